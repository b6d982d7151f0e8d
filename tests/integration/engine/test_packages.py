"""A function brings its own packages: deployed with a requirement, resolved to a lock, built
into an environment, and run by the worker in a warm executor there (hermetic: a wheel made
here, served from a find-links folder)."""

import pytest

from tests.conftest import deploy_source
from tests.unit.engine.test_environments import INDEX_VARIABLES
from tests.unit.engine.wheels import make_wheel

SOURCE = (
    "# /// script\n# dependencies = ['brisa-demo-pkg']\n# ///\n"
    "import brisa_demo_pkg\n"
    "def handler(event, context):\n"
    "    return brisa_demo_pkg.VALUE\n"
)


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(
        folder, "brisa_demo_pkg", "1.0.0", files={"brisa_demo_pkg/__init__.py": "VALUE = 42\n"}
    )
    for name in INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return folder


def test_a_function_with_a_package_deploys_with_a_lock_and_runs(
    client, admin, consumer, wheelhouse
):
    version = deploy_source(client, admin, "demo", SOURCE)
    assert version["packages"] == ["brisa-demo-pkg==1.0.0"]
    again = client.post("/api/v1/functions", json={"name": "demo", "source": SOURCE}, headers=admin)
    assert (again.status_code, again.get_json()["version"]) == (200, version["version"])
    first = client.post("/api/v1/functions/demo/invoke?wait=30", headers=admin).get_json()
    second = client.post("/api/v1/functions/demo/invoke?wait=30", headers=admin).get_json()
    assert (first["state"], first["result"], second["result"]) == ("success", 42, 42)


def test_a_requirement_that_does_not_exist_is_a_422_with_the_resolvers_message(
    client, admin, wheelhouse
):
    body = {"name": "nope", "source": "def handler(e, c):\n    return 1\n"}
    body["requirements"] = ["brisa-no-such-package"]
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422
    assert "brisa-no-such-package" in str(response.get_json()["error"])


def test_a_bad_requirement_is_a_422(client, admin):
    body = {
        "name": "bad",
        "source": "def handler(e, c):\n    return 1\n",
        "requirements": ["x y z"],
    }
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "requirements"
