"""Static checks of the deployment files (no Docker engine runs here)."""

import re
import shlex
from pathlib import Path

import yaml

from app.devserver import read_procfile

ROOT = Path(__file__).resolve().parents[2]
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
    assert set(compose()["services"]) == {"postgres", "redis", *BRISA_SERVICES}


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


def test_dockerfile_copies_paths_that_exist():
    dockerfile = (ROOT / "infra/Dockerfile").read_text()
    sources = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE)
    assert sources
    for source in sources:
        for path in source.split():
            assert (ROOT / path).exists(), path


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
    from app.queue import redis_url

    assert redis_url("rediss://:pw@host:6380") == "rediss://:pw@host:6380?ssl_cert_reqs=none"
    assert (
        redis_url("rediss://h:1/0?ssl_cert_reqs=required")
        == "rediss://h:1/0?ssl_cert_reqs=required"
    )
    assert redis_url("redis://h:1/0") == "redis://h:1/0"
