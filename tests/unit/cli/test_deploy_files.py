"""Static checks of the deployment files (no Docker engine runs here)."""

import re
import runpy
import shlex
from pathlib import Path

import yaml

from app.cli.devserver import read_procfile

ROOT = Path(__file__).resolve().parents[3]
BRISA_SERVICES = {"migrate": "release", "web": "web", "worker": "worker", "clock": "clock"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def command_text(service: dict) -> str:
    """A compose command as the Procfile would write it."""
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        text = command[2].removeprefix("exec ")
    else:
        text = shlex.join(command)
    return text.replace("$$", "$")


def test_procfile_has_the_four_process_types():
    assert set(read_procfile(ROOT / "Procfile")) == {"release", "web", "worker", "clock"}


def test_compose_has_the_seed_architecture():
    assert set(compose()["services"]) == {"postgres", "redis", "proxy", *BRISA_SERVICES}


def test_clients_reach_web_only_through_the_buffering_proxy():
    """#16.5: port 8000 was published straight to gunicorn, whose threads slow clients hold."""
    services = compose()["services"]
    assert "ports" not in services["web"]
    assert services["proxy"]["ports"] == ["${PORT:-8000}:8080"]
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    mounted = services["proxy"]["volumes"][0].split(":")
    assert mounted[:2] == ["./infra/nginx.conf", "/etc/nginx/nginx.conf"]
    config = (ROOT / "infra/nginx.conf").read_text()
    for directive in ("client_header_timeout 10s", "proxy_request_buffering on", "web:8000"):
        assert directive in config, directive


def test_every_brisa_service_runs_its_procfile_command():
    procfile = read_procfile(ROOT / "Procfile")
    services = compose()["services"]
    for service, process in BRISA_SERVICES.items():
        assert command_text(services[service]) == procfile[process], service


def test_brisa_services_wait_for_healthy_dependencies_and_the_release_step():
    services = compose()["services"]
    for name in ("web", "worker", "clock"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name


def test_every_variable_compose_sets_is_one_brisa_reads():
    read_by_app = "\n".join(
        p.read_text()
        for p in [*ROOT.joinpath("app").rglob("*.py"), ROOT / "infra/gunicorn.conf.py"]
    )
    services = compose()["services"]
    for name in BRISA_SERVICES:
        for variable in services[name].get("environment", {}):
            assert f'"{variable}"' in read_by_app or f"'{variable}'" in read_by_app, variable


DURATION_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}


def seconds(duration: str) -> float:
    """A compose duration (``30s``, ``1m30s``, ``1500ms``) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def test_durations_are_read_as_compose_writes_them():
    assert seconds("30s") == 30 and seconds("1m30s") == 90 and seconds("1500ms") == 1.5


def test_every_brisa_service_has_time_to_stop_gracefully():
    """SIGKILL comes stop_grace_period after SIGTERM: later than gunicorn's graceful_timeout
    and the consumers' --shutdown-timeout defaults, and no sooner than Heroku's 30 s."""
    document = compose()
    shared = document["x-brisa"]
    brisa = {name for name, s in document["services"].items() if s.get("build") == shared["build"]}
    assert brisa == set(BRISA_SERVICES)  # every Brisa service is built from the anchor

    gunicorn = runpy.run_path(str(ROOT / "infra/gunicorn.conf.py"))["graceful_timeout"]
    procfile = (ROOT / "Procfile").read_text()
    shutdowns = re.findall(r"--shutdown-timeout (?:\$\{\w+:-)?(\d+(?:\.\d+)?)", procfile)
    assert len(shutdowns) == 2  # worker and clock
    slowest_stop = max(gunicorn, *map(float, shutdowns))
    for name in brisa:
        grace = seconds(document["services"][name]["stop_grace_period"])
        assert grace >= 30 and grace > slowest_stop, (name, grace, slowest_stop)


def test_dockerfile_copies_paths_that_exist():
    dockerfile = (ROOT / "infra/Dockerfile").read_text()
    sources = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE)
    assert sources
    for source in sources:
        for path in source.split():
            assert (ROOT / path).exists(), path


def test_environments_are_kept_on_a_volume_web_and_workers_share():
    """Functions' packages are built by uv (pinned in requirements.txt) under BRISA_ENV_DIR:
    the image sets it inside the folder compose mounts as a volume for web and the workers."""
    dockerfile = (ROOT / "infra/Dockerfile").read_text()
    env_dir = re.search(r"BRISA_ENV_DIR=(\S+)", dockerfile).group(1)
    assert re.search(r"^uv==", (ROOT / "requirements.txt").read_text(), flags=re.MULTILINE)
    services = compose()["services"]
    for name in ("web", "worker"):
        mounts = dict(volume.split(":", 1) for volume in services[name]["volumes"])
        assert any(env_dir.startswith(path + "/") for path in mounts.values()), name
    assert "environments" in compose()["volumes"]


def app_json() -> dict:
    import json

    return json.loads((ROOT / "app.json").read_text())


def test_app_json_provisions_the_seed_architecture():
    manifest = app_json()
    assert set(manifest["formation"]) == {"web", "worker", "clock"}
    assert set(manifest["formation"]) <= set(read_procfile(ROOT / "Procfile"))
    plans = [addon["plan"].split(":")[0] for addon in manifest["addons"]]
    assert plans == ["heroku-postgresql", "heroku-redis"]
    assert manifest["env"]["SECRET_KEY"]["generator"] == "secret"
    assert "release" in read_procfile(ROOT / "Procfile")  # Heroku's release phase


def test_every_variable_app_json_sets_is_one_brisa_reads():
    sources = [*ROOT.joinpath("app").rglob("*.py"), ROOT / "infra/gunicorn.conf.py"]
    read_by_app = "\n".join(p.read_text() for p in sources)
    procfile = (ROOT / "Procfile").read_text()
    for variable in app_json()["env"]:
        quoted = f'"{variable}"' in read_by_app or f"'{variable}'" in read_by_app
        assert quoted or "${" + variable in procfile, variable


def test_the_python_version_is_pinned_for_the_buildpack():
    assert (ROOT / ".python-version").read_text().strip() == "3.11"


def test_heroku_tls_redis_skips_verifying_its_self_signed_certificate():
    from app.broker import redis_url

    assert redis_url("rediss://:pw@host:6380") == "rediss://:pw@host:6380?ssl_cert_reqs=none"
    assert (
        redis_url("rediss://h:1/0?ssl_cert_reqs=required")
        == "rediss://h:1/0?ssl_cert_reqs=required"
    )
    assert redis_url("redis://h:1/0") == "redis://h:1/0"


def test_app_json_postdeploy_deploys_through_the_database():
    """postdeploy runs in a one-off dyno: DATABASE_URL is set, no web process is reachable."""
    from app.cli.commands import _parser

    words = shlex.split(app_json()["scripts"]["postdeploy"])
    assert words[:3] == ["python", "-m", "app"]
    args = _parser().parse_args(words[3:])
    assert args.command == "deploy" and args.local and (ROOT / args.path).is_dir()
