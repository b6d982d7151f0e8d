"""gunicorn settings for the ``web`` process (Procfile). Honours PORT, WEB_CONCURRENCY,
BRISA_BIND (the address to listen on: every interface unless set; ``make run`` sets
127.0.0.1) and BRISA_LOG_LEVEL (from warning up, no access log)."""

import os

_host = os.environ.get("BRISA_BIND") or "0.0.0.0"
_port = os.environ.get("PORT", "8000")
bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"  # an IPv6 one in brackets
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("BRISA_WEB_THREADS", "8"))  # ?wait= invocations hold a thread
timeout = 90  # above the longest ?wait= (60 s)
graceful_timeout = 25  # below the 30 s before SIGKILL (Heroku; compose's stop_grace_period)
keepalive = 5
loglevel = (os.environ.get("BRISA_LOG_LEVEL") or "info").lower()
accesslog = "-" if loglevel in ("debug", "info") else None
errorlog = "-"
