"""The web UI in headless Chromium against the real app: sign in, trigger, watch runs live,
read logs, pause, clear, deploy, and what the viewer role may not do. The tests share one
running system and run in file order; each finds the runs it needs through the API.

With BRISA_SCREENSHOTS=1 they also take the README's screenshots (docs/screenshots/) at a
laptop's viewport."""

import json
import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import (
    api,
    create_token,
    mark_page,
    screenshot,
    sign_in,
    still_same_page,
)
from tests.system import AUTH, wait_for_state

pytestmark = pytest.mark.browser

SUCCESS = re.compile(r"\bstate-success\b")


def latest_run(system, dag_id: str) -> dict:
    return api(system, "GET", f"/dags/{dag_id}/runs?limit=1")["runs"][0]


def test_sign_in_and_see_the_example_dags(page):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("#token", "brisa_not_a_token")
    page.click("button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("That token does not work")

    page.fill("#token", "test-admin-token")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("role")).to_have_text("admin")
    for dag_id in ("example_pipeline", "example_failure", "etl_demo"):
        expect(page.locator(f'tr[data-dag="{dag_id}"] .dag-link')).to_have_text(dag_id)
    expect(page.locator('tr[data-dag="etl_demo"]')).to_contain_text("0 3 * * *")

    page.fill("input[name=q]", "failure")
    page.press("input[name=q]", "Enter")
    expect(page.locator("tr[data-dag]")).to_have_count(1)
    expect(page.locator("tr[data-dag]")).to_have_attribute("data-dag", "example_failure")


def test_trigger_with_conf_and_watch_the_squares_turn_green(page, brisa):
    sign_in(page)
    mark_page(page)
    page.get_by_test_id("trigger-example_pipeline").click()
    dialog = page.locator("#trigger-dialog")
    expect(dialog).to_be_visible()

    page.fill("#conf", '{"name": "Ada"')  # the editor checks the JSON before sending
    expect(page.locator("#conf-error")).to_contain_text("Not valid JSON")
    expect(page.locator("#trigger-submit")).to_be_disabled()
    page.fill("#conf", "[1, 2]")
    expect(page.locator("#conf-error")).to_contain_text("JSON object")
    page.fill("#conf", '{"name": "Ada"}')
    expect(page.locator("#conf-error")).to_be_hidden()
    page.click("#trigger-submit")
    expect(dialog).to_be_hidden()
    expect(page.locator(".flash-success").last).to_contain_text("Triggered run")

    run = latest_run(brisa, "example_pipeline")
    assert run["conf"] == {"name": "Ada"}
    square = page.locator(f'tr[data-dag="example_pipeline"] .sq[data-run="{run["run_id"]}"]')
    expect(square).to_have_class(SUCCESS)

    # On the DAG's grid: trigger again, and the new column's four squares go green.
    page.click('a.dag-link:text("example_pipeline")')
    expect(page.locator("#grid .grid-table")).to_be_visible()
    mark_page(page)
    page.get_by_test_id("trigger-example_pipeline").click()
    page.fill("#conf", '{"name": "Ada"}')
    page.click("#trigger-submit")
    expect(page.locator("#grid .bar")).to_have_count(2)
    newest = latest_run(brisa, "example_pipeline")["run_id"]
    cells = page.locator(f'#grid button.sq[data-run="{newest}"]')
    expect(cells).to_have_count(4)
    for index in range(4):
        expect(cells.nth(index)).to_have_class(SUCCESS)
    assert still_same_page(page), "the page reloaded instead of updating in place"


def test_a_square_shows_its_task_and_opens_its_log(page, brisa):
    run_id = latest_run(brisa, "example_pipeline")["run_id"]
    sign_in(page, then="/dags/example_pipeline")
    page.click(f'#grid button.sq[data-run="{run_id}"][data-task="hello"]')
    details = page.locator("#details")
    expect(details.get_by_test_id("detail-state")).to_have_text("success")
    expect(details).to_contain_text(f"run {run_id}")

    details.get_by_role("link", name="Log").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}/tasks/hello/logs"))
    expect(page.get_by_test_id("log")).to_contain_text("greeting Ada")
    href = page.get_by_test_id("download").get_attribute("href")
    download = page.request.get(href)
    assert download.ok and "greeting Ada" in download.text()
    assert "attachment" in download.headers["content-disposition"]


def test_a_finished_run_that_changes_changes_on_the_open_grid(page, brisa):
    body = {"conf": {"name": "Ada"}}  # as the runs the next tests take as the latest
    run_id = api(brisa, "POST", "/dags/example_pipeline/runs", json=body)["run_id"]
    wait_for_state(brisa.base, run_id)
    sign_in(page, then="/dags/example_pipeline")
    mark_page(page)
    square = page.locator(f'#grid button.sq[data-run="{run_id}"][data-task="hello"]')
    expect(square).to_have_class(SUCCESS)
    # The grid's polls bring only what changed since their cursor: this run, once marked.
    mark = f"/runs/{run_id}/tasks/hello/mark"
    api(brisa, "POST", mark, json={"state": "failed"})
    expect(square).to_have_class(re.compile(r"\bstate-failed\b"))
    api(brisa, "POST", mark, json={"state": "success"})
    expect(square).to_have_class(SUCCESS)
    assert wait_for_state(brisa.base, run_id)["state"] == "success"
    assert still_same_page(page)


def test_a_running_tasks_log_follows_live_and_the_graph_colours_by_state(page, brisa):
    sign_in(page)
    run = api(brisa, "POST", "/dags/etl_demo/runs", json={})
    page.goto(f"/runs/{run['run_id']}/tasks/extract/logs")
    mark_page(page)
    log = page.get_by_test_id("log")
    expect(page.locator("[data-follow]")).to_be_visible()
    expect(log).to_contain_text("step 1 of 3")
    expect(log).to_contain_text("step 3 of 3")
    expect(page.locator("[data-task-state]")).to_have_text("success")
    expect(page.locator("[data-follow]")).to_be_hidden()
    assert log.inner_text().count("step 1 of 3") == 1, "a chunk of the log was shown twice"
    assert still_same_page(page)

    page.goto("/dags/etl_demo?tab=graph")
    nodes = page.locator("svg.graph .node")
    expect(nodes).to_have_count(6)
    expect(page.locator("svg.graph .edge")).to_have_count(7)
    expect(page.locator('.node[data-task="enrich"]')).to_have_class(re.compile("state-running"))
    expect(page.locator('.node[data-task="clean"]')).to_have_class(SUCCESS)
    # Layers run left to right: every arrow's target is right of its source.
    boxes = {
        task: page.locator(f'.node[data-task="{task}"]').bounding_box()["x"]
        for task in ("extract", "clean", "enrich", "validate", "load", "report")
    }
    assert boxes["extract"] < boxes["clean"] == boxes["enrich"] == boxes["validate"]
    assert boxes["enrich"] < boxes["load"] < boxes["report"]
    screenshot(page, "dag_graph.png")
    expect(page.locator('.node[data-task="report"]')).to_have_class(SUCCESS, timeout=20_000)


def test_pause_and_unpause(page, brisa):
    sign_in(page)
    switch = page.get_by_test_id("pause-example_pipeline")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    assert api(brisa, "GET", "/dags/example_pipeline")["paused"] is True
    page.reload()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(page.locator('tr[data-dag="example_pipeline"]')).to_have_class(re.compile("is-paused"))
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert api(brisa, "GET", "/dags/example_pipeline")["paused"] is False


def test_clear_a_task_and_see_it_rerun(page, brisa):
    run_id = latest_run(brisa, "example_pipeline")["run_id"]
    wait_for_state(brisa.base, run_id)
    sign_in(page, then=f"/runs/{run_id}")
    mark_page(page)
    row = page.locator('tr[data-task="summarise"]')
    expect(row.locator('[data-field="try"]')).to_have_text("1")
    page.get_by_test_id("clear-summarise").click()
    expect(page.locator(".flash-success").last).to_contain_text("Cleared summarise")
    expect(row.locator('[data-field="try"]')).to_have_text("2")
    expect(row.locator('[data-field="state"]')).to_have_text("success")
    expect(row.locator('[data-field="result"]')).to_contain_text('"total": 15')
    expect(page.locator("[data-run-state]")).to_have_text("success")
    assert still_same_page(page)
    screenshot(page, "run.png")


def test_the_viewer_sees_no_change_buttons(page, brisa):
    token = create_token(brisa, "viewer")
    run_id = latest_run(brisa, "example_pipeline")["run_id"]
    sign_in(page, token)
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    expect(page.locator('tr[data-dag="example_pipeline"]')).to_be_visible()
    controls = "[data-trigger], form[data-fetch], button.switch, #deploy-form"
    named = re.compile("Clear|Mark|Cancel|Trigger|Rerun|Deploy")
    pages = ("/", "/dags/example_pipeline", f"/runs/{run_id}", "/functions", "/functions/hello")
    for path in pages:
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        expect(page.locator(controls)).to_have_count(0)
        expect(page.get_by_role("button", name=named)).to_have_count(0)
    page.goto("/")
    expect(page.locator(".switch.readonly")).to_have_count(3)
    # The server refuses too, whatever the page shows.
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(
        "/dags/example_pipeline/pause",
        form={"paused": "true"},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert response.status == 403
    assert api(brisa, "GET", "/dags/example_pipeline")["paused"] is False


def test_deploy_a_new_function_version_from_the_browser(page, brisa):
    sign_in(page, then="/functions/step")
    expect(page.get_by_test_id("source")).to_contain_text("def handler(event, context):")
    expect(page.locator(".facts")).to_contain_text("etl_demo")
    source = page.locator("#deploy-form textarea[name=source]")
    source.fill(source.input_value() + "\n\ndef helper():\n    return 1\n")
    page.click("#deploy-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Deployed step version 2")
    expect(page.get_by_test_id("source")).to_contain_text("def helper():")
    page.goto("/functions/step?version=1")
    expect(page.get_by_test_id("source")).not_to_contain_text("def helper():")

    page.goto("/functions/step")
    page.locator("#deploy-form textarea[name=source]").fill("def handler(:\n")
    page.click("#deploy-form button[type=submit]")
    expect(page.locator("#deploy-form .flash-error")).to_contain_text("Not deployed")
    assert len(api(brisa, "GET", "/functions/step")["versions"]) == 2


def test_screenshots_of_the_dags_page_and_a_log(page, brisa):
    failing = api(brisa, "POST", "/dags/example_failure/runs", json={})
    wait_for_state(brisa.base, failing["run_id"])
    for name in ("Grace", "Linus"):
        body = {"conf": {"name": name}}
        run = api(brisa, "POST", "/dags/example_pipeline/runs", json=body)
        wait_for_state(brisa.base, run["run_id"])
    sign_in(page)
    failed = page.locator(f'tr[data-dag="example_failure"] .sq[data-run="{failing["run_id"]}"]')
    expect(failed).to_have_class(re.compile(r"\bstate-failed\b"))
    screenshot(page, "dags.png")

    page.goto("/dags/example_pipeline")
    page.locator('#grid button.sq[data-task="summarise"]').last.click()
    expect(page.get_by_test_id("detail-state")).to_have_text("success")
    screenshot(page, "dag_grid.png")

    page.goto(f"/runs/{failing['run_id']}/tasks/boom/logs")
    expect(page.get_by_test_id("log")).to_contain_text("RuntimeError: this task fails on purpose")
    expect(page.locator("[data-task-state]")).to_have_text("failed")
    screenshot(page, "log.png")
    raw = requests.get(
        f"{brisa.base}/api/v1/runs/{failing['run_id']}/tasks/after", headers=AUTH, timeout=5
    )
    assert json.loads(raw.text)["state"] == "upstream_failed"
