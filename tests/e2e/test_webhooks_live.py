"""Signed webhooks against real gunicorn and a real worker, on Postgres + Redis."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.engine import webhooks
from tests.system import AUTH, github_headers, procfile_system, wait_for_state

ECHO = "def handler(event, context):\n    return event['conf']\n"


@pytest.mark.e2e
def test_signed_deliveries_and_concurrent_repeats(tmp_path):
    with procfile_system("postgres", tmp_path / "var") as system:
        base = system.base
        deploy = {"name": "echo", "source": ECHO}
        assert requests.post(f"{base}/api/v1/functions", json=deploy, headers=AUTH).ok
        spec = {"dag_id": "hooked", "tasks": [{"task_id": "t", "function": "echo"}]}
        created = requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH).json()
        secret = created["webhook_secret"]
        url = f"{base}/hooks/hooked"

        body = json.dumps({"via": "github"}).encode()
        github = requests.post(url, data=body, headers=github_headers(secret, body, "gh-1"))
        standard_body = json.dumps({"via": "standard"}).encode()
        standard = requests.post(
            url,
            data=standard_body,
            headers={
                **webhooks.standard_headers(secret, "msg-1", standard_body),
                "Content-Type": "application/json",
            },
        )
        assert (github.status_code, standard.status_code) == (202, 202)
        for answer, via in ((github, "github"), (standard, "standard")):
            run = wait_for_state(base, answer.json()["run_id"])
            assert (run["state"], run["tasks"][0]["result"]) == ("success", {"via": via})

        rejected = [
            requests.post(
                url, data=body, headers=github_headers(webhooks.new_secret(), body, "x1")
            ),
            requests.post(url, data=b'{"via": "evil"}', headers=github_headers(secret, body, "x2")),
            requests.post(
                url,
                data=body,
                headers=webhooks.standard_headers(secret, "x3", body, now=time.time() - 3600),
            ),
            requests.post(url, data=body, headers={"X-GitHub-Delivery": "x4"}),
        ]
        assert [r.status_code for r in rejected] == [401, 401, 401, 401]

        # 200 concurrent deliveries, 20 ids each delivered 10 times
        deliveries = [(f"dup-{i % 20}", json.dumps({"n": i % 20}).encode()) for i in range(200)]

        def deliver(item):
            delivery, payload = item
            return requests.post(
                url, data=payload, headers=github_headers(secret, payload, delivery)
            )

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(deliver, deliveries))
        assert {a.status_code for a in answers} <= {200, 202}
        by_delivery = {}
        for (delivery, _), answer in zip(deliveries, answers, strict=True):
            by_delivery.setdefault(delivery, set()).add(answer.json()["run_id"])
        assert all(len(ids) == 1 for ids in by_delivery.values())
        assert sum(a.status_code == 202 for a in answers) == 20
        runs = requests.get(f"{base}/api/v1/dags/hooked/runs?limit=100", headers=AUTH).json()
        assert len(runs["runs"]) == 2 + 20  # the two signed ones, then one per distinct id
