"""Calling back an async invocation's receiver: the run's outcome is POSTed, signed with the
Standard Webhooks scheme (``webhook-id`` stays the same on every attempt, so a receiver can
drop repeats), and retried with backoff while the receiver fails. Only to public addresses
(or those BRISA_EGRESS_ALLOW allows), vetted after DNS, no redirects (app/engine/outbound.py);
a refused one is logged and counted in callbacks_refused_total. The delivery is kept on the
run (pending, then delivered, failed or refused): the clock resends an attempt whose message
was lost, so a callback is delivered at least once."""

import http.client
import json
import logging
from datetime import datetime, timedelta

from app.config import current
from app.domain import egress
from app.domain.states import RUN_FINISHED
from app.domain.timeutil import isoformat, utcnow
from app.engine import metrics, outbound, sweeps, webhooks
from app.store import outbox
from app.store.db import db
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


PENDING, DELIVERED, FAILED, REFUSED = "pending", "delivered", "failed", "refused"
LOST_AFTER = timedelta(seconds=30)  # a pending attempt this overdue lost its message


def schedule(run_id: int) -> None:
    """The run has ended: its callback's first attempt is due now (kept on the run, and
    its message sent after the commit). Once per run."""
    now = utcnow()
    moved = (
        DagRun.update(callback_state=PENDING, callback_attempt=1, callback_due_at=now)
        .where(
            (DagRun.id == run_id)
            & DagRun.callback_url.is_null(False)
            & DagRun.callback_state.is_null()
        )
        .execute()
    )
    if moved:
        outbox.callback_due(run_id, 1, now)


def claim(run_id: int, attempt: int) -> bool:
    """Take attempt ``attempt`` of the run's callback (compare-and-set): False for a stale or
    duplicated message. Its due time moves past the attempt's timeout, so the clock resends
    it only if this worker never finishes it."""
    lease = utcnow() + timedelta(seconds=current().callback_timeout_s)
    return DagRun.update(callback_due_at=lease).where(_pending(run_id, attempt)).execute() == 1


def _pending(run_id: int, attempt: int):
    return (
        (DagRun.id == run_id)
        & (DagRun.callback_state == PENDING)
        & (DagRun.callback_attempt == attempt)
    )


def send(run_id: int, attempt: int) -> bool:
    """Make claimed attempt ``attempt``; True when the receiver answered 2xx (delivered). A
    failed attempt schedules the next (1 s, 2 s, 4 s, ... at most BRISA_CALLBACK_MAX_DELAY_S
    apart) until BRISA_CALLBACK_ATTEMPTS have been made (then failed); a refused address is
    not tried again (refused)."""
    run = DagRun.get_or_none(_pending(run_id, attempt))
    if run is None or run.callback_url is None:
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
        _end(run_id, attempt, REFUSED)
        return False
    except (OSError, http.client.HTTPException) as exc:
        log.warning("callback of run %s, attempt %d, failed: %s", run_id, attempt, exc)
    else:
        if 200 <= status < 300:
            _end(run_id, attempt, DELIVERED)
            return True
        moved = " (redirects are not followed)" if 300 <= status < 400 else ""
        log.warning("callback of run %s, attempt %d: HTTP %d%s", run_id, attempt, status, moved)
    if attempt >= settings.callback_attempts:
        _end(run_id, attempt, FAILED)
        return False
    delay = timedelta(seconds=min(2 ** (attempt - 1), settings.callback_max_delay_s))
    due = utcnow() + delay
    with db.atomic():
        query = DagRun.update(callback_attempt=attempt + 1, callback_due_at=due)
        if query.where(_pending(run_id, attempt)).execute():
            outbox.callback_due(run_id, attempt + 1, due)
    return False


def _end(run_id: int, attempt: int, state: str) -> None:
    DagRun.update(callback_state=state, callback_due_at=None).where(
        _pending(run_id, attempt)
    ).execute()


def resend_lost(now: datetime) -> int:
    """Pending callbacks overdue by LOST_AFTER (their message was lost with the queue, or
    their worker died mid-attempt): the same attempt is sent again (receivers drop repeats
    by webhook-id). And runs finished LOST_AFTER ago with a callback never scheduled (the
    process died between the run's end and ``schedule``). Returns how many."""
    unscheduled = DagRun.select(DagRun.id).where(
        DagRun.callback_url.is_null(False)
        & DagRun.callback_state.is_null()
        & DagRun.state.in_([str(state) for state in RUN_FINISHED])
        & (DagRun.finished_at < now - LOST_AFTER)
    )
    forgotten = list(unscheduled)  # read first: those scheduled below are not yet overdue
    lost = DagRun.select(DagRun.id, DagRun.callback_attempt).where(
        (DagRun.callback_state == PENDING) & (DagRun.callback_due_at < now - LOST_AFTER)
    )
    resent = 0

    def resend(run: DagRun) -> None:
        nonlocal resent
        with db.atomic():
            query = DagRun.update(callback_due_at=now).where(_pending(run.id, run.callback_attempt))
            if query.execute():
                outbox.callback_due(run.id, run.callback_attempt, utcnow())  # at once
                resent += 1

    sweeps.each("resending lost callbacks", list(lost), resend)
    sweeps.each("scheduling forgotten callbacks", forgotten, lambda run: schedule(run.id))
    return resent + len(forgotten)
