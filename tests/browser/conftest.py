"""Browser tests: the real app (the Procfile's web, worker and clock on the embedded default)
driven in headless Chromium by Playwright.

Chromium is Debian's package (.ci/run installs it); Playwright never downloads a browser.
Locally a missing Chromium or Playwright skips these tests; with CI=true it fails them.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN_TOKEN, IN_CI, env_flag
from tests.system import AUTH, ROOT, deploy_examples_over_http, procfile_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "docs" / "screenshots"  # tracked: rewritten only with BRISA_SCREENSHOTS=1

# Two functions and a DAG the tests deploy besides the examples: ``nap`` logs a line a
# second for three seconds, so a run is slow enough to watch it (and its log) live.
NAP = '''"""Logs a line a second, three times: slow enough to watch."""
import time


def handler(event, context):
    for step in range(1, 4):
        context.log.info("step %d of 3: working", step)
        time.sleep(1)
    return {"steps": 3}
'''
STEP = """def handler(event, context):
    context.log.info("done after %s", sorted(event["upstream"]))
    return {"ok": True}
"""
ETL_DAG = {
    "dag_id": "etl_demo",
    "description": "extract, then clean, enrich and validate in parallel; load; report",
    "schedule": "0 3 * * *",
    "timezone": "Europe/Lisbon",
    "tasks": [
        {"task_id": "extract", "function": "nap"},
        {"task_id": "clean", "function": "step", "upstream": ["extract"]},
        {"task_id": "enrich", "function": "nap", "upstream": ["extract"]},
        {"task_id": "validate", "function": "step", "upstream": ["extract"]},
        {"task_id": "load", "function": "step", "upstream": ["clean", "enrich"]},
        {"task_id": "report", "function": "step", "upstream": ["load", "validate"]},
    ],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the web UI in headless Chromium")


def _missing(message: str):
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"playwright is not installed: {exc}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def brisa(chromium, tmp_path_factory):
    """Web, worker and clock as real processes, with the examples and etl_demo deployed."""
    with procfile_system("embedded", tmp_path_factory.mktemp("ui") / "var") as system:
        deploy_examples_over_http(system.base)
        for name, source in (("nap", NAP), ("step", STEP)):
            body = {"name": name, "source": source}
            response = requests.post(f"{system.base}/api/v1/functions", json=body, headers=AUTH)
            assert response.status_code == 201, response.text
        response = requests.post(f"{system.base}/api/v1/dags", json=ETL_DAG, headers=AUTH)
        assert response.status_code == 201, response.text
        yield system


@pytest.fixture
def page(chromium, brisa):
    context = chromium.new_context(viewport=VIEWPORT, base_url=brisa.base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, token: str = ADMIN_TOKEN, then: str = "/") -> None:
    page.goto(then)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".topbar")


def create_token(system, role: str) -> str:
    """A new API token, made as an operator would: the CLI, on the system's database."""
    command = [sys.executable, "-m", "app", "token", "create", "--role", role]
    result = subprocess.run(
        command, cwd=ROOT, env=system.env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def api(system, method: str, path: str, **kwargs):
    response = requests.request(method, f"{system.base}/api/v1{path}", headers=AUTH, **kwargs)
    response.raise_for_status()
    return response.json()


def mark_page(page) -> None:
    """Tag the document: if the tag is still there later, the page was never reloaded."""
    page.evaluate("window.__noReload = true")


def still_same_page(page) -> bool:
    return page.evaluate("window.__noReload === true")


def screenshot(page, name: str) -> None:
    """Save the page as docs/screenshots/``name`` when asked (BRISA_SCREENSHOTS=1); else
    nothing, so a test run leaves the tracked images alone."""
    if env_flag("BRISA_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name))
