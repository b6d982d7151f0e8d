"""Build tiny pure-Python wheels by hand, for tests that must not touch a package index.

A wheel is a zip with the package's modules and a `<name>-<version>.dist-info/` folder holding
METADATA, WHEEL and RECORD (PEP 427). Entries carry a fixed timestamp, so the same arguments give
byte-identical files and therefore identical hashes.
"""

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["make_wheel"]

FIXED_DATE = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _metadata(name: str, version: str, requires: Iterable[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n\n"


def _wheel_file() -> str:
    return "Wheel-Version: 1.0\nGenerator: brisa-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _entry_points(scripts: Mapping[str, str]) -> str:
    lines = ["[console_scripts]"] + [f"{name} = {target}" for name, target in scripts.items()]
    return "\n".join(lines) + "\n"


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str],
    requires: Iterable[str] = (),
    scripts: Mapping[str, str] | None = None,
) -> Path:
    """Write `<folder>/<name>-<version>-py3-none-any.whl` and return its path.

    `name` is the distribution name with underscores (e.g. "brisa_demo_pkg"); `files` maps paths
    inside the wheel (e.g. "brisa_demo_pkg/__init__.py") to their text; `requires` are
    Requires-Dist lines; `scripts` are console scripts, "name" -> "module:function".
    """
    dist_info = f"{name}-{version}.dist-info"
    contents = {path: text.encode() for path, text in files.items()}
    contents[f"{dist_info}/METADATA"] = _metadata(name, version, requires).encode()
    contents[f"{dist_info}/WHEEL"] = _wheel_file().encode()
    if scripts:
        contents[f"{dist_info}/entry_points.txt"] = _entry_points(scripts).encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in contents.items():
            info = zipfile.ZipInfo(member, FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path
