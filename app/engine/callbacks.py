"""Calling back an async invocation's receiver: the run's outcome is POSTed, signed with the
Standard Webhooks scheme (``webhook-id`` stays the same on every attempt, so a receiver can
drop repeats), and retried with backoff while the receiver fails. Only to public addresses
(or those BRISA_EGRESS_ALLOW allows), vetted after DNS, no redirects (app/engine/outbound.py);
a refused one is logged and counted in callbacks_refused_total."""

import http.client
import json
import logging
from datetime import timedelta

from app.config import current
from app.domain import egress
from app.domain.timeutil import isoformat, utcnow
from app.engine import metrics, outbound, webhooks
from app.store import outbox
from app.store.models import DagRun, TaskInstance

log = logging.getLogger(__name__)


def payload(run: DagRun) -> dict:
    ti = TaskInstance.get(TaskInstance.run == run.id)
    function = run.function  # every invoke run has one; only DAG runs have none
    return {
        "run_id": run.id,
        "function": function.name if function is not None else None,
        "state": run.state,
        "result": ti.result,
        "error": ti.error,
        "finished_at": isoformat(run.finished_at),
        "url": f"/api/v1/runs/{run.id}",
    }


def send(run_id: int, attempt: int) -> bool:
    """One attempt; returns True when the receiver answered 2xx. A failed attempt schedules
    the next (1 s, 2 s, 4 s, ... at most BRISA_CALLBACK_MAX_DELAY_S apart) until
    BRISA_CALLBACK_ATTEMPTS have been made."""
    run = DagRun.get_or_none(DagRun.id == run_id)
    if run is None or not run.callback_url:
        return False
    settings = current()
    body = json.dumps(payload(run)).encode()
    secret = webhooks.callback_secret(settings.secret_key)
    headers = {"Content-Type": "application/json"}
    headers |= webhooks.standard_headers(secret, f"brisa-run-{run_id}", body)
    allow = egress.Allow.parse(settings.egress_allow)
    try:
        status = outbound.post(run.callback_url, body, headers, settings.callback_timeout_s, allow)
    except egress.Refused as exc:  # will be refused again: no further attempt
        log.warning("callback of run %s refused: %s", run_id, exc)
        metrics.add("callbacks_refused_total")
        return False
    except (OSError, http.client.HTTPException) as exc:
        log.warning("callback of run %s, attempt %d, failed: %s", run_id, attempt, exc)
    else:
        if 200 <= status < 300:
            return True
        moved = " (redirects are not followed)" if 300 <= status < 400 else ""
        log.warning("callback of run %s, attempt %d: HTTP %d%s", run_id, attempt, status, moved)
    if attempt < settings.callback_attempts:
        delay = timedelta(seconds=min(2 ** (attempt - 1), settings.callback_max_delay_s))
        outbox.callback_due(run_id, attempt + 1, utcnow() + delay)
    return False
