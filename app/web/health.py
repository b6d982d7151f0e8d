"""Liveness and readiness, unauthenticated, for load balancers and orchestrators."""

from flask import Blueprint, Response, jsonify

from app import broker
from app.engine import metrics
from app.store.db import db

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    checks = {"database": _check(lambda: db.execute_sql("SELECT 1").fetchone())}
    checks["queue"] = _check(broker.huey.storage.queue_size)
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503
    )


@health.get("/metrics")
def prometheus_metrics():
    """Prometheus text format; unauthenticated like the health checks (counts, no data)."""
    return Response(metrics.render(broker.queue_counts), content_type=PROMETHEUS_TYPE)


PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"down: {type(exc).__name__}"
    return "ok"
