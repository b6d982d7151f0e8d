"""Functions bring their own packages: requirements -> lock -> a cached, isolated virtualenv.

The flow, in the style of AWS Lambda layers or Windmill's lockfiles:

1. What a function needs comes from its PEP 723 block (`parse_script_metadata`) or a plain
   list; `normalise_requirements` validates it (PEP 508 names and versions only, no URLs or pip
   options) and puts it in one canonical order; `check_requires_python` refuses a function that
   the workers' interpreter cannot run.
2. `resolve` pins the requirements with `uv pip compile --generate-hashes` into a `Lock`: a
   requirements.txt in which every line is `name==version` plus its sha256 hashes. Store
   `Lock.text` with the function's version: it is what makes a later build reproducible.
3. `ensure_built` turns a lock's text into a virtualenv under `env_dir/<sha256 of the text>`,
   built once per machine (or per shared folder) and reused by every function with the same
   lock; least-recently-used environments are evicted above a size cap. Run the function with
   `Built.python`, and hold `in_use(Built.path)` while it runs so that no eviction removes it.

Only the standard library, `packaging` and the `uv` binary are used. uv is looked up on PATH,
then in the `uv` Python package (its wheel ships the binary).

Index settings. uv itself reads UV_INDEX_URL / UV_DEFAULT_INDEX, UV_EXTRA_INDEX_URL / UV_INDEX,
UV_FIND_LINKS, UV_OFFLINE, UV_CACHE_DIR and its config files (uv.toml); they are passed through
untouched. For sites configured for pip, the pip environment variables are translated into uv's
options when uv's own are not set (`pip_index_options`): PIP_INDEX_URL -> --default-index,
PIP_EXTRA_INDEX_URL -> --index (one per URL), PIP_FIND_LINKS -> --find-links (one per
location), PIP_NO_INDEX -> --no-index. pip's configuration *files* (pip.conf) are not read. Note
that with several indexes uv takes a package from the first index that has it
(`--index-strategy first-index`) where pip picks the best version across all of them; set
UV_INDEX_STRATEGY=unsafe-best-match to get pip's behaviour.

Only wheels are used (`--no-build`): building a source distribution runs its setup code at
resolve and build time, on the machine that resolves. A lock is for this interpreter's
"major.minor" (`python_tag`) and this machine's platform (markers are evaluated here; no
`--python-platform`): resolve on a machine of the workers' kind.

Layout of `env_dir` (one per interpreter, e.g. `var/envs/3.11`):

    <sha>/                 a complete environment (only ever created by a rename)
        bin/python         symlink to the base interpreter: run functions with it
        brisa-lock.txt     the lock it was built from
        .brisa-last-used   its mtime is the last use, for LRU eviction
    <sha>.lock             flock target: exclusive while building or evicting, shared in use;
                           never deleted (deleting a lock file races with its next opener)
    .build-<sha>-<rand>/   a build under way, or left by a crash (removed by the next build)
    .trash-<sha>-<rand>/   an evicted environment being deleted

Venvs are not relocatable by default: uv writes the build path into `bin/activate` and into
the shebang of console scripts. Environments are made with `uv venv --relocatable` so that
both still work after the rename. Packages are copied from uv's cache (`--link-mode copy`
unless UV_LINK_MODE is set) rather than hard-linked: a function that writes into its own
site-packages must not change uv's cache, and the size cap then counts real disk use.
"""

import contextlib
import fcntl
import hashlib
import importlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

MAX_REQUIREMENTS = 200
MAX_REQUIREMENT_CHARS = 500
MAX_MESSAGE_CHARS = 4000
LAST_USED = ".brisa-last-used"
LOCK_COPY = "brisa-lock.txt"
BUILD_PREFIX = ".build-"
TRASH_PREFIX = ".trash-"
_MB = 1024 * 1024
_LOCK_POLL_S = 0.05
_TRUTHY = {"1", "true", "yes", "on"}

# The reference regular expression of PEP 723 ("Inline script metadata").
PEP723_REGEX = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)
_SCRIPT_START = re.compile(r"(?m)^# /// script$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class EnvironmentSpecError(ValueError):
    """What a function asks for is invalid: its script block, a requirement, requires-python."""


class ResolutionError(RuntimeError):
    """uv could not pin the requirements; the message is uv's own stderr, trimmed."""


class BuildError(RuntimeError):
    """uv could not build the environment of a lock; the message carries uv's output."""


@dataclass(frozen=True)
class ScriptMetadata:
    """The `# /// script` block of a function: PEP 508 strings (as written) and a specifier."""

    dependencies: tuple[str, ...] = ()
    requires_python: str | None = None


@dataclass(frozen=True)
class Lock:
    """Pinned requirements: `text` is a requirements.txt with `--hash` lines ("" for none),
    `sha256` the hex digest of its UTF-8 bytes, `requirements` the normalised input."""

    text: str
    sha256: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Built:
    """A ready environment: `path` is `env_dir/<sha256>`, `python` its `bin/python`;
    `built_now` is False when it already existed; `log` is uv's output of the build ("" when
    reused); `duration_s` is the wall time of the call in seconds, waiting included."""

    path: Path
    python: Path
    built_now: bool
    log: str
    duration_s: float


@dataclass(frozen=True)
class _Outcome:
    returncode: int
    stdout: str
    stderr: str


def python_tag() -> str:
    """The running interpreter's "major.minor", e.g. "3.11": locks are valid for it only."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def sha256_hex(text: str) -> str:
    """Hex sha256 of `text` encoded as UTF-8 (64 characters)."""
    return hashlib.sha256(text.encode()).hexdigest()


# --- what a function asks for ------------------------------------------------------------------


def parse_script_metadata(source: str) -> ScriptMetadata:
    """Read the PEP 723 `# /// script` block of a Python source.

    No block gives an empty `ScriptMetadata`. Raises EnvironmentSpecError for two script blocks,
    an opened but unclosed block, invalid TOML, `dependencies` not a list of strings, or
    `requires-python` not a string holding a valid version specifier. The dependency strings are
    returned as written: pass them to `normalise_requirements`.
    """
    content = _script_block(source)
    if content is None:
        return ScriptMetadata()
    try:
        table = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise EnvironmentSpecError(f"the `# /// script` block is not valid TOML: {exc}") from exc
    return _metadata_from_table(table)


def _script_block(source: str) -> str | None:
    blocks = [m for m in PEP723_REGEX.finditer(source) if m.group("type") == "script"]
    if len(blocks) > 1:
        raise EnvironmentSpecError(
            f"found {len(blocks)} `# /// script` blocks; a script may have only one"
        )
    if not blocks:
        if _SCRIPT_START.search(source):
            raise EnvironmentSpecError(
                "the `# /// script` block is not closed by a `# ///` line, or one of its lines "
                "does not start with `#`"
            )
        return None
    lines = blocks[0].group("content").splitlines(keepends=True)
    return "".join(line[2:] if line.startswith("# ") else line[1:] for line in lines)


def _metadata_from_table(table: dict[str, Any]) -> ScriptMetadata:
    dependencies = table.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise EnvironmentSpecError("`dependencies` in the script block must be a list of strings")
    requires_python = table.get("requires-python")
    if requires_python is not None:
        if not isinstance(requires_python, str):
            raise EnvironmentSpecError("`requires-python` in the script block must be a string")
        _specifier(requires_python)
    return ScriptMetadata(tuple(dependencies), requires_python)


def _specifier(spec: str) -> SpecifierSet:
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier as exc:
        raise EnvironmentSpecError(
            f"requires-python {spec!r} is not a valid version specifier"
        ) from exc


def normalise_requirements(requirements: Iterable[str]) -> tuple[str, ...]:
    """Validate PEP 508 requirements and return them deduplicated in canonical order.

    Each entry is rewritten canonically (`Foo_Bar [B,a] >= 1` -> `foo-bar[a,b]>=1`) and the
    result sorted by name, so the same set always gives the same tuple and hence the same lock.
    Raises EnvironmentSpecError naming every bad entry: not a string, empty, over
    MAX_REQUIREMENT_CHARS characters, a pip option (`-e`, `--index-url`, ...), a direct URL or
    path, or invalid PEP 508; or more than MAX_REQUIREMENTS entries.
    """
    if isinstance(requirements, str):
        raise EnvironmentSpecError("requirements must be a list of strings, not one string")
    entries = list(requirements)
    if len(entries) > MAX_REQUIREMENTS:
        raise EnvironmentSpecError(
            f"{len(entries)} requirements given; at most {MAX_REQUIREMENTS} are allowed"
        )
    keys: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for entry in entries:
        try:
            requirement = _parse_requirement(entry)
        except EnvironmentSpecError as exc:
            problems.append(str(exc))
            continue
        rendered = _render(requirement)
        keys[rendered] = (canonicalize_name(requirement.name), rendered)
    if problems:
        raise EnvironmentSpecError("invalid requirements: " + "; ".join(problems))
    return tuple(sorted(keys, key=keys.__getitem__))


def _parse_requirement(entry: object) -> Requirement:
    if not isinstance(entry, str):
        raise EnvironmentSpecError(f"requirement {entry!r}: not a string")
    text = entry.strip()
    if len(text) > MAX_REQUIREMENT_CHARS:
        raise EnvironmentSpecError(
            f"requirement {text[:40]!r}...: longer than {MAX_REQUIREMENT_CHARS} characters"
        )
    if not text:
        raise EnvironmentSpecError("requirement '': empty")
    if text.startswith("-"):
        raise EnvironmentSpecError(f"requirement {text!r}: pip options are not allowed")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        if _looks_like_location(text):
            raise _url_refused(text) from exc
        reason = str(exc).splitlines()[0]
        raise EnvironmentSpecError(f"requirement {text!r}: not PEP 508: {reason}") from exc
    if requirement.url:
        raise _url_refused(text)
    return requirement


def _looks_like_location(text: str) -> bool:
    return "://" in text or text.startswith((".", "/", "~")) or text.endswith((".whl", ".gz"))


def _url_refused(text: str) -> EnvironmentSpecError:
    return EnvironmentSpecError(
        f"requirement {text!r}: direct URLs are not allowed, use an index or find-links"
    )


def _render(requirement: Requirement) -> str:
    extras = sorted(canonicalize_name(extra) for extra in requirement.extras)
    name = canonicalize_name(requirement.name)
    extras_text = f"[{','.join(extras)}]" if extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{name}{extras_text}{requirement.specifier}{marker}"


def check_requires_python(spec: str | None, version: str = platform.python_version()) -> None:
    """Raise EnvironmentSpecError unless `version` (default: this interpreter's, e.g. "3.11.7")
    satisfies the `requires-python` specifier `spec`; None accepts any version."""
    if spec is None:
        return
    if not _specifier(spec).contains(version, prereleases=True):
        raise EnvironmentSpecError(
            f"requires-python {spec} cannot be satisfied by the workers' Python {version}"
        )


# --- running uv --------------------------------------------------------------------------------


def find_uv() -> str | None:
    """Path of the uv binary: the first `uv` on PATH, else the one the `uv` package ships."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        return str(importlib.import_module("uv").find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


def pip_index_options(environ: Mapping[str, str]) -> list[str]:
    """uv options equivalent to pip's index environment variables, each only when uv's own
    variable for it is unset or empty (see the module docstring). Example:
    {"PIP_FIND_LINKS": "/a /b"} -> ["--find-links", "/a", "--find-links", "/b"]."""

    def unset(*names: str) -> bool:
        return not any(environ.get(name, "").strip() for name in names)

    options: list[str] = []
    index_url = environ.get("PIP_INDEX_URL", "").strip()
    if index_url and unset("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        options += ["--default-index", index_url]
    if unset("UV_EXTRA_INDEX_URL", "UV_INDEX"):
        for url in environ.get("PIP_EXTRA_INDEX_URL", "").split():
            options += ["--index", url]
    if unset("UV_FIND_LINKS"):
        for location in environ.get("PIP_FIND_LINKS", "").split():
            options += ["--find-links", location]
    if environ.get("PIP_NO_INDEX", "").strip().lower() in _TRUTHY:
        options.append("--no-index")
    return options


def _trim(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-limit // 4 :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


def _run_uv(args: list[str], *, stdin: str, timeout_s: float) -> _Outcome:
    """Run `uv *args` in its own process group, in an empty temporary folder (so that no
    project's pyproject.toml or uv.toml around the current folder applies; the user's and the
    system's uv.toml still do). Raises FileNotFoundError without uv and TimeoutError (after
    killing the group) past `timeout_s` seconds."""
    uv = find_uv()
    if uv is None:
        raise FileNotFoundError("uv is not installed: pip install uv (see requirements.txt)")
    with tempfile.TemporaryDirectory(prefix="brisa-uv-") as cwd:
        return _communicate([uv, *args], stdin=stdin, timeout_s=timeout_s, cwd=cwd)


def _communicate(command: list[str], *, stdin: str, timeout_s: float, cwd: str) -> _Outcome:
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=max(timeout_s, 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            shown = " ".join(command[1:3] if command[1] == "pip" else command[1:2])
            raise TimeoutError(f"uv {shown} did not finish within {timeout_s:.1f} s") from None
    return _Outcome(process.returncode, stdout, stderr)


# --- resolving ---------------------------------------------------------------------------------


def resolve(requirements: Iterable[str], *, timeout_s: float = 120) -> Lock:
    """Pin `requirements` (normalised first) for this interpreter's Python version.

    Runs `uv pip compile` with the requirements on stdin; no requirements gives an empty Lock
    without running uv. Raises EnvironmentSpecError for invalid requirements and ResolutionError
    (uv's stderr, trimmed to MAX_MESSAGE_CHARS) when a package is missing, the requirements
    conflict, an index cannot be reached, uv is missing, or `timeout_s` seconds pass.
    """
    normalised = normalise_requirements(requirements)
    if not normalised:
        return Lock(text="", sha256=sha256_hex(""), requirements=())
    args = [
        *("pip", "compile", "-", "--generate-hashes", "--no-header", "--no-annotate"),
        *("--python", sys.executable, "--python-version", python_tag()),
        *("--no-build", "--quiet", "--color", "never"),
        *pip_index_options(os.environ),
    ]
    try:
        outcome = _run_uv(args, stdin="\n".join(normalised) + "\n", timeout_s=timeout_s)
    except (FileNotFoundError, TimeoutError) as exc:
        raise ResolutionError(str(exc)) from exc
    if outcome.returncode != 0:
        raise ResolutionError(_trim(outcome.stderr or outcome.stdout) or "uv pip compile failed")
    return Lock(text=outcome.stdout, sha256=sha256_hex(outcome.stdout), requirements=normalised)


# --- building ----------------------------------------------------------------------------------


def ensure_built(lock_text: str, *, env_dir: Path, cache_mb: int, timeout_s: float = 600) -> Built:
    """Return the virtualenv of `lock_text` (a `Lock.text`), building it if it is missing.

    The environment is `env_dir/<sha256 of lock_text>`: a venv of this interpreter without the
    system's or the workers' site-packages, holding exactly the lock's packages. It is built in a
    temporary sibling folder and renamed into place, under an exclusive flock of
    `env_dir/<sha>.lock`, so concurrent callers (processes or machines sharing `env_dir` on a
    filesystem with working flock and rename) build it once and never see half of one. Every
    call marks it used (mtime of `<env>/.brisa-last-used`). After a build, least-recently-used
    environments are deleted while the cache exceeds `cache_mb` MiB (never the new one, never
    one whose lock is held). `env_dir` must belong to one interpreter: use e.g.
    `var/envs/<python_tag()>`.

    Raises EnvironmentSpecError when the lock holds pip options, and BuildError (with uv's
    output) when uv fails, is missing, or `timeout_s` seconds pass; then no environment is left.
    """
    started = time.monotonic()
    _check_lock_text(lock_text)
    sha = sha256_hex(lock_text)
    env_dir.mkdir(parents=True, exist_ok=True)
    final = env_dir / sha
    if _mark_used(final):
        return _built(final, False, "", started)
    with _exclusive(env_dir / f"{sha}.lock", deadline=started + timeout_s):
        if _mark_used(final):
            return _built(final, False, "", started)
        _sweep(env_dir, own_sha=sha)
        log = _build_into_place(lock_text, final, deadline=started + timeout_s)
        _evict(env_dir, limit_bytes=cache_mb * _MB, keep=sha)
    return _built(final, True, log, started)


@contextlib.contextmanager
def in_use(env: Path) -> Iterator[Path]:
    """Hold a shared flock on the lock of `env` (a `Built.path`) so eviction skips it.

    Yields `env`. Raises FileNotFoundError when the environment was evicted before the lock was
    taken: call `ensure_built` again.
    """
    with _open_lock(env.parent / f"{env.name}.lock") as fd:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not (env / LAST_USED).exists():
            raise FileNotFoundError(f"environment {env} does not exist (evicted?)")
        yield env


def _check_lock_text(lock_text: str) -> None:
    for number, line in enumerate(lock_text.splitlines(), start=1):
        if line.startswith("-"):
            raise EnvironmentSpecError(f"lock line {number}: pip options are not allowed")


def _built(env: Path, built_now: bool, log: str, started: float) -> Built:
    return Built(env, env / "bin" / "python", built_now, log, time.monotonic() - started)


def _mark_used(env: Path) -> bool:
    """Touch the marker of a complete environment; False when there is none."""
    try:
        os.utime(env / LAST_USED)
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def _open_lock(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases its flock


@contextlib.contextmanager
def _exclusive(path: Path, *, deadline: float) -> Iterator[None]:
    """Hold an exclusive flock of `path`, polling until `deadline` (monotonic seconds)."""
    with _open_lock(path) as fd:
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise BuildError(f"timed out waiting for another build holding {path}")
            time.sleep(_LOCK_POLL_S)
        yield


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _sweep(env_dir: Path, *, own_sha: str) -> None:
    """Delete leftovers of crashed builds and evictions whose lock nobody holds."""
    for entry in env_dir.iterdir():
        if not entry.name.startswith((BUILD_PREFIX, TRASH_PREFIX)):
            continue
        sha = entry.name.split("-")[1]
        if not _SHA256_HEX.fullmatch(sha):
            continue
        if sha == own_sha:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        with _open_lock(env_dir / f"{sha}.lock") as fd:
            if _try_lock(fd):
                shutil.rmtree(entry, ignore_errors=True)


def _build_into_place(lock_text: str, final: Path, *, deadline: float) -> str:
    """Build the venv in a temporary sibling, then rename it to `final`; returns uv's log."""
    temporary = Path(tempfile.mkdtemp(prefix=f"{BUILD_PREFIX}{final.name}-", dir=final.parent))
    try:
        temporary.chmod(0o755)  # mkdtemp's 0700 would hide the environment from other users
        log = _build(lock_text, temporary, deadline=deadline)
        (temporary / LAST_USED).touch()
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return log


def _build(lock_text: str, target: Path, *, deadline: float) -> str:
    """`uv venv --relocatable` (console scripts keep working after the rename), then install
    the lock with hashes required and no dependency resolution of its own."""
    venv = ["venv", str(target), "--relocatable", "--python", sys.executable]
    log = _build_step(venv, deadline=deadline)
    (target / LOCK_COPY).write_text(lock_text)
    if not lock_text.strip():
        return log
    install = [
        *("pip", "install", "--python", str(target / "bin" / "python")),
        *("--require-hashes", "--no-deps", "--no-build", "-r", str(target / LOCK_COPY)),
        *(() if os.environ.get("UV_LINK_MODE") else ("--link-mode", "copy")),
        *pip_index_options(os.environ),
    ]
    return log + _build_step(install, deadline=deadline)


def _build_step(args: list[str], *, deadline: float) -> str:
    """Run one uv command of a build; returns the command line and its output."""
    args = [*args, "--color", "never", "--no-progress"]
    try:
        outcome = _run_uv(args, stdin="", timeout_s=deadline - time.monotonic())
    except (FileNotFoundError, TimeoutError) as exc:
        raise BuildError(str(exc)) from exc
    log = f"$ uv {' '.join(args)}\n{outcome.stdout}{outcome.stderr}"
    if outcome.returncode != 0:
        raise BuildError(_trim(log))
    return log


# --- evicting ----------------------------------------------------------------------------------


def _evict(env_dir: Path, *, limit_bytes: int, keep: str) -> None:
    """Delete least-recently-used environments while their total size exceeds `limit_bytes`."""
    environments = sorted(_environments(env_dir))
    total = sum(size for _, _, size in environments)
    for last_used, sha, size in environments:
        if total <= limit_bytes:
            return
        if sha != keep and _delete_if_idle(env_dir, sha, last_used):
            total -= size


def _environments(env_dir: Path) -> Iterator[tuple[float, str, int]]:
    """(last use as epoch seconds, sha, bytes on disk) of each complete environment."""
    for entry in env_dir.iterdir():
        if _SHA256_HEX.fullmatch(entry.name):
            with contextlib.suppress(FileNotFoundError):
                yield (entry / LAST_USED).stat().st_mtime, entry.name, _disk_bytes(entry)


def _disk_bytes(root: Path) -> int:
    """Bytes allocated under `root` (like `du`), each hard-linked inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                stat = os.lstat(os.path.join(folder, name))
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
    return total


def _delete_if_idle(env_dir: Path, sha: str, last_used: float) -> bool:
    """Delete one environment unless its lock is held or it was used since `last_used`."""
    with _open_lock(env_dir / f"{sha}.lock") as fd:
        if not _try_lock(fd):
            return False
        env = env_dir / sha
        try:
            if (env / LAST_USED).stat().st_mtime != last_used:
                return False
            trash = Path(tempfile.mkdtemp(prefix=f"{TRASH_PREFIX}{sha}-", dir=env_dir))
            os.rename(env, trash / sha)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
    return True
