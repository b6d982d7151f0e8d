"""Sweeps over many rows (the clock's tick: reaping, timeouts, retries, lost messages, due
DAGs): one row that fails is logged with its traceback, counted in /metrics
(``brisa_sweep_items_failed_total``) and skipped, so it never stops the sweep, or the tick,
for the others. The database being unreachable still ends the sweep: no row could be done."""

import logging
from collections.abc import Callable, Iterable

from app.engine import metrics
from app.store.db import DB_ERRORS

log = logging.getLogger(__name__)


def each(sweep: str, items: Iterable, act: Callable[..., object]) -> int:
    """``act(item)`` for every item; returns how many answered truthy (an int counts as
    itself). ``sweep`` names the sweep in the log."""
    done = 0
    for item in items:
        try:
            answer = act(item)
        except DB_ERRORS:
            raise
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("%s: %s failed and was skipped; the sweep goes on", sweep, _show(item))
            _count_failure()
            continue
        done += answer if isinstance(answer, int) and not isinstance(answer, bool) else bool(answer)
    return done


def _count_failure() -> None:
    try:
        metrics.add("sweep_items_failed_total")
    except DB_ERRORS:
        raise
    except Exception:  # noqa: BLE001 - counting must not fail the sweep either
        log.exception("could not count a failed sweep item")


def _show(item) -> str:
    ident = getattr(item, "id", None)
    return f"{type(item).__name__} {ident}" if ident is not None else repr(item)[:200]
