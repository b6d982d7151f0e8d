"""app/engine/environments.py with the real uv, against wheels made here: no network.

The hermetic fixture points uv at a find-links folder of hand-made wheels, turns the index off
(PIP_NO_INDEX=1, which the module translates to --no-index: uv 0.13 has no UV_NO_INDEX) and sets
UV_OFFLINE=1 and a private UV_CACHE_DIR. Only the last test reaches a real index, and only when
one answers (in CI it must).
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.engine import environments as envs
from app.engine.environments import (
    BuildError,
    Built,
    EnvironmentSpecError,
    Lock,
    ResolutionError,
    ScriptMetadata,
    check_requires_python,
    ensure_built,
    in_use,
    normalise_requirements,
    parse_script_metadata,
    pip_index_options,
    resolve,
)
from tests.conftest import wait_until_gone
from tests.unit.engine.wheels import make_wheel

REPO = Path(__file__).resolve().parents[3]
INDEX_VARIABLES = (
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_CACHE",
    "UV_LINK_MODE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
)
BLOB_BYTES = 700 * 1024  # each brisa_demo_big environment is about 0.8 MiB on disk


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    pkg = "brisa_demo_pkg/__init__.py"
    main = "VALUE = 42\n\n\ndef main():\n    print(VALUE)\n"
    scripts = {"brisa-demo": "brisa_demo_pkg:main"}
    make_wheel(folder, "brisa_demo_pkg", "1.0.0", files={pkg: main}, scripts=scripts)
    make_wheel(folder, "brisa_demo_pkg", "2.0.0", files={pkg: "VALUE = 43\n"})
    app = {"brisa_demo_app/__init__.py": "from brisa_demo_pkg import VALUE\n"}
    make_wheel(folder, "brisa_demo_app", "1.0.0", files=app, requires=["brisa-demo-pkg<2"])
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        blob = {"brisa_demo_big/__init__.py": "", "brisa_demo_big/blob.txt": "x" * BLOB_BYTES}
        make_wheel(folder, "brisa_demo_big", version, files=blob)
    return folder


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path, uv_cache: Path) -> Path:
    """uv sees only the wheelhouse; returns it."""
    for name in INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    return wheelhouse


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return tmp_path / "envs"


def lock_for(*requirements: str) -> Lock:
    return resolve(requirements)


def run_python(built: Built, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(built.python), "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def wheel_sha256(folder: Path, name: str) -> str:
    return hashlib.sha256((folder / name).read_bytes()).hexdigest()


# --- PEP 723 -----------------------------------------------------------------------------------

SCRIPT = """\
# /// script
# requires-python = ">=3.10"
# dependencies = [
#   "requests<3",
#   "rich",
# ]
# ///

import requests
"""


def test_parses_a_script_block() -> None:
    assert parse_script_metadata(SCRIPT) == ScriptMetadata(("requests<3", "rich"), ">=3.10")


def test_no_script_block_is_empty_metadata() -> None:
    assert parse_script_metadata("print('hi')\n# /// other\n# x\n# ///\n") == ScriptMetadata()


def test_two_script_blocks_are_refused() -> None:
    with pytest.raises(EnvironmentSpecError, match="found 2 `# /// script` blocks"):
        parse_script_metadata(SCRIPT + "\n" + SCRIPT)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('# dependencies = ["a"\n', "not valid TOML"),
        ('# dependencies = "requests"\n', "must be a list of strings"),
        ("# dependencies = [1]\n", "must be a list of strings"),
        ("# requires-python = 3.11\n", "`requires-python` in the script block must be a string"),
        ('# requires-python = "three"\n', "not a valid version specifier"),
    ],
)
def test_bad_script_blocks_are_refused(block: str, message: str) -> None:
    with pytest.raises(EnvironmentSpecError, match=message):
        parse_script_metadata(f"# /// script\n{block}# ///\n")


def test_an_unclosed_script_block_is_refused() -> None:
    with pytest.raises(EnvironmentSpecError, match="not closed"):
        parse_script_metadata('# /// script\n# dependencies = ["a"]\nimport a\n')


# --- requirements ------------------------------------------------------------------------------


def test_requirements_are_canonical_deduplicated_and_sorted() -> None:
    given = ["Rich", "requests <3, >=2", "Foo_Bar [Sec, a] >= 1 ; python_version>'3'", "rich"]
    assert normalise_requirements(given) == (
        'foo-bar[a,sec]>=1; python_version > "3"',
        "requests<3,>=2",
        "rich",
    )
    assert normalise_requirements(reversed(given)) == normalise_requirements(given)
    assert normalise_requirements([]) == ()


def test_every_bad_requirement_is_named() -> None:
    with pytest.raises(EnvironmentSpecError) as caught:
        normalise_requirements(["ok", "a b", "six==", "", "-e .", "--index-url=https://x"])
    message = str(caught.value)
    for bad in ("'a b'", "'six=='", "''", "'-e .'", "'--index-url=https://x'"):
        assert bad in message
    assert "'ok'" not in message


@pytest.mark.parametrize(
    "entry",
    ["pkg @ https://example.com/pkg.whl", "https://example.com/pkg.whl", "./pkg", "/tmp/x.whl"],
)
def test_urls_and_paths_are_refused(entry: str) -> None:
    with pytest.raises(EnvironmentSpecError, match="direct URLs are not allowed, use an index"):
        normalise_requirements([entry])


def test_requirement_limits() -> None:
    with pytest.raises(EnvironmentSpecError, match="201 requirements given; at most 200"):
        normalise_requirements([f"pkg{i}" for i in range(201)])
    with pytest.raises(EnvironmentSpecError, match="longer than 500 characters"):
        normalise_requirements(["a" * 501])
    with pytest.raises(EnvironmentSpecError, match="not one string"):
        normalise_requirements("requests")


def test_requires_python() -> None:
    check_requires_python(None)
    check_requires_python(">=3.8", "3.11.7")
    with pytest.raises(EnvironmentSpecError) as caught:
        check_requires_python(">=3.13", "3.11.7")
    message = "requires-python >=3.13 cannot be satisfied by the workers' Python 3.11.7"
    assert str(caught.value) == message
    with pytest.raises(EnvironmentSpecError, match="not a valid version specifier"):
        check_requires_python("3.11")


# --- index settings ----------------------------------------------------------------------------


def test_pip_index_variables_become_uv_options_unless_uv_has_its_own() -> None:
    pip = {
        "PIP_INDEX_URL": "https://mirror/simple",
        "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple",
        "PIP_FIND_LINKS": "/opt/wheels",
    }
    assert pip_index_options(pip) == [
        *("--default-index", "https://mirror/simple"),
        *("--index", "https://a/simple", "--index", "https://b/simple"),
        *("--find-links", "/opt/wheels"),
    ]
    uv = {"UV_INDEX_URL": "u", "UV_EXTRA_INDEX_URL": "e", "UV_FIND_LINKS": "f"}
    assert pip_index_options({**pip, **uv}) == []
    assert pip_index_options({"PIP_NO_INDEX": "true"}) == ["--no-index"]
    assert pip_index_options({}) == []


# --- resolving ---------------------------------------------------------------------------------


def test_resolve_pins_with_hashes_and_is_deterministic(hermetic: Path) -> None:
    lock = resolve(("brisa-demo-pkg<2",))
    digest = wheel_sha256(hermetic, "brisa_demo_pkg-1.0.0-py3-none-any.whl")
    assert lock.text == f"brisa-demo-pkg==1.0.0 \\\n    --hash=sha256:{digest}\n"
    assert lock.sha256 == hashlib.sha256(lock.text.encode()).hexdigest()
    assert lock.requirements == ("brisa-demo-pkg<2",)
    again = resolve(["Brisa_Demo_Pkg <2", "brisa-demo-pkg<2"])
    assert again.sha256 == lock.sha256


def test_resolve_follows_dependencies(hermetic: Path) -> None:
    lock = resolve(("brisa-demo-app",))
    pins = [line.split(" ")[0] for line in lock.text.splitlines() if "==" in line]
    assert pins == ["brisa-demo-app==1.0.0", "brisa-demo-pkg==1.0.0"]
    assert lock.text.count("--hash=sha256:") == 2


def test_a_missing_package_is_uvs_message(hermetic: Path) -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve(("brisa-demo-pkg", "brisa-no-such-pkg"))
    assert "brisa-no-such-pkg was not found" in str(caught.value)


def test_a_conflict_is_uvs_message(hermetic: Path) -> None:
    with pytest.raises(ResolutionError, match="requirements are unsatisfiable"):
        resolve(("brisa-demo-app", "brisa-demo-pkg>=2"))


def test_no_requirements_is_an_empty_lock_without_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envs, "find_uv", lambda: pytest.fail("uv was called"))
    lock = resolve(())
    assert lock == Lock(text="", sha256=hashlib.sha256(b"").hexdigest(), requirements=())


def test_resolve_refuses_urls_before_running_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envs, "find_uv", lambda: pytest.fail("uv was called"))
    with pytest.raises(EnvironmentSpecError, match="direct URLs"):
        resolve(("pkg @ https://example.com/pkg.whl",))


# --- building ----------------------------------------------------------------------------------


def test_builds_an_isolated_environment_once(hermetic: Path, env_dir: Path) -> None:
    lock = lock_for("brisa-demo-pkg==1.0.0")
    built = ensure_built(lock.text, env_dir=env_dir, cache_mb=100)
    assert built.built_now and built.path == env_dir / lock.sha256
    assert built.python == built.path / "bin" / "python"
    assert "brisa-demo-pkg==1.0.0" in built.log
    shown = run_python(built, "import brisa_demo_pkg; print(brisa_demo_pkg.VALUE)")
    assert shown.stdout == "42\n"
    assert "No module named 'flask'" in run_python(built, "import flask").stderr
    assert (
        subprocess.run([built.path / "bin" / "brisa-demo"], capture_output=True).stdout == b"42\n"
    )
    again = ensure_built(lock.text, env_dir=env_dir, cache_mb=100)
    assert (again.path, again.built_now, again.log) == (built.path, False, "")
    assert entries(env_dir) == [f"{lock.sha256}", f"{lock.sha256}.lock"]


def test_an_empty_lock_is_a_bare_environment(hermetic: Path, env_dir: Path) -> None:
    built = ensure_built("", env_dir=env_dir, cache_mb=100)
    assert run_python(built, "import sys; print(sys.prefix)").stdout == f"{built.path}\n"
    assert run_python(built, "import packaging").returncode == 1


CONCURRENT_BUILDER = """\
import json, sys, time
from pathlib import Path
from app.engine.environments import ensure_built
lock_text = Path(sys.argv[2]).read_text()
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
built = ensure_built(lock_text, env_dir=Path(sys.argv[1]), cache_mb=100)
print(json.dumps({"path": str(built.path), "built_now": built.built_now}))
"""


def test_concurrent_builders_build_once(hermetic: Path, env_dir: Path, tmp_path: Path) -> None:
    lock = lock_for("brisa-demo-app")
    (tmp_path / "lock.txt").write_text(lock.text)
    start_at = str(time.time() + 1.0)  # both wait for the same moment once imported
    command = [sys.executable, "-c", CONCURRENT_BUILDER, str(env_dir), "lock.txt", start_at]
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    builders = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, env=environ)
        for _ in range(2)
    ]
    results = [json.loads(builder.communicate(timeout=60)[0]) for builder in builders]
    assert sorted(result["built_now"] for result in results) == [False, True]
    assert {result["path"] for result in results} == {str(env_dir / lock.sha256)}
    assert entries(env_dir) == [lock.sha256, f"{lock.sha256}.lock"]


def use_order(env_dir: Path, *locks: Lock) -> None:
    """Mark the environments of `locks` as last used in that order, oldest first."""
    now = time.time()
    for age, lock in enumerate(reversed(locks), start=1):
        os.utime(env_dir / lock.sha256 / envs.LAST_USED, (now - 100 * age, now - 100 * age))


def test_least_recently_used_environments_are_evicted(hermetic: Path, env_dir: Path) -> None:
    first, second, third = (lock_for(f"brisa-demo-big=={v}") for v in ("1.0.0", "2.0.0", "3.0.0"))
    for lock in (first, second):
        ensure_built(lock.text, env_dir=env_dir, cache_mb=100)
    use_order(env_dir, first, second)
    ensure_built(first.text, env_dir=env_dir, cache_mb=100)  # first is now the most recent
    ensure_built(third.text, env_dir=env_dir, cache_mb=2)
    kept = {name for name in entries(env_dir) if not name.endswith(".lock")}
    assert kept == {first.sha256, third.sha256}
    newest = ensure_built(lock_for("brisa-demo-pkg==2.0.0").text, env_dir=env_dir, cache_mb=0)
    kept = {name for name in entries(env_dir) if not name.endswith(".lock")}
    assert kept == {newest.path.name}  # over the cap alone, but never the one just built


def test_an_environment_used_since_the_listing_is_not_evicted(
    hermetic: Path, env_dir: Path
) -> None:
    built = ensure_built("", env_dir=env_dir, cache_mb=100)
    assert not envs._delete_if_idle(env_dir, built.path.name, last_used=0.0)
    last_used = (built.path / envs.LAST_USED).stat().st_mtime
    assert envs._delete_if_idle(env_dir, built.path.name, last_used=last_used)
    assert entries(env_dir) == [f"{built.path.name}.lock"]


def test_an_environment_in_use_is_not_evicted(hermetic: Path, env_dir: Path) -> None:
    first, second, third = (lock_for(f"brisa-demo-big=={v}") for v in ("1.0.0", "2.0.0", "3.0.0"))
    oldest = ensure_built(first.text, env_dir=env_dir, cache_mb=100)
    ensure_built(second.text, env_dir=env_dir, cache_mb=100)
    use_order(env_dir, first, second)
    with in_use(oldest.path):
        ensure_built(third.text, env_dir=env_dir, cache_mb=2)
    kept = {name for name in entries(env_dir) if not name.endswith(".lock")}
    assert kept == {first.sha256, third.sha256}
    ensure_built(third.text, env_dir=env_dir, cache_mb=0)  # reused: nothing is evicted
    assert (env_dir / first.sha256).exists()
    with pytest.raises(FileNotFoundError), in_use(env_dir / second.sha256):
        pass


def test_a_failed_build_leaves_no_environment(hermetic: Path, env_dir: Path) -> None:
    good = lock_for("brisa-demo-pkg==1.0.0").text
    tampered = good.replace("--hash=sha256:", "--hash=sha256:0", 1)[:-2] + "\n"
    with pytest.raises(BuildError) as caught:
        ensure_built(tampered, env_dir=env_dir, cache_mb=100)
    assert "Hash mismatch" in str(caught.value)
    assert entries(env_dir) == [f"{hashlib.sha256(tampered.encode()).hexdigest()}.lock"]


def test_leftovers_of_a_crashed_build_are_removed(hermetic: Path, env_dir: Path) -> None:
    lock = lock_for("brisa-demo-pkg==1.0.0")
    other = "f" * 64
    for leftover in (f".build-{lock.sha256}-crashed", f".build-{other}-x", f".trash-{other}-y"):
        (env_dir / leftover / "bin").mkdir(parents=True)
    ensure_built(lock.text, env_dir=env_dir, cache_mb=100)
    assert entries(env_dir) == [lock.sha256, f"{lock.sha256}.lock", f"{other}.lock"]


def test_build_errors(hermetic: Path, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EnvironmentSpecError, match="lock line 1: pip options"):
        ensure_built("--index-url https://evil/simple\n", env_dir=env_dir, cache_mb=100)
    monkeypatch.setattr(envs, "find_uv", lambda: None)
    with pytest.raises(BuildError, match="uv is not installed"):
        ensure_built("", env_dir=env_dir, cache_mb=100)
    assert entries(env_dir) == [f"{hashlib.sha256(b'').hexdigest()}.lock"]


def test_uv_is_stopped_at_the_timeout(
    env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    slow_uv = tmp_path / "slow-uv"
    # sh and its child, which holds the pipes too, both record their pid; never done alone
    slow_uv.write_text(f"#!/bin/sh\necho $$ >> {pids}\nsleep 3600 &\necho $! >> {pids}\nwait\n")
    slow_uv.chmod(0o755)
    monkeypatch.setattr(envs, "find_uv", lambda: str(slow_uv))
    with pytest.raises(ResolutionError, match="uv pip compile did not finish within 0.2 s"):
        resolve(("six",), timeout_s=0.2)
    with pytest.raises(BuildError, match="uv venv did not finish within 0.2 s"):
        ensure_built("", env_dir=env_dir, cache_mb=100, timeout_s=0.2)
    assert entries(env_dir) == [f"{hashlib.sha256(b'').hexdigest()}.lock"]
    # each call returned (uv's sleep alone would hold the pipes for an hour), and what of its
    # process group had started is gone: killed, not waited for
    started = [int(pid) for pid in pids.read_text().split()] if pids.exists() else []
    assert not [pid for pid in started if not wait_until_gone(pid)], "uv's group outlived it"


# --- a real index ------------------------------------------------------------------------------


def test_a_real_package_from_the_configured_index(real_index: None, env_dir: Path) -> None:
    lock = resolve(("six",))
    assert lock.text.startswith("six==") and "--hash=sha256:" in lock.text
    built = ensure_built(lock.text, env_dir=env_dir, cache_mb=100)
    assert run_python(built, "import six; print(six.PY3)").stdout == "True\n"
