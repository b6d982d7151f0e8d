"""gunicorn settings for the ``web`` process (Procfile). Honours PORT and WEB_CONCURRENCY."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("BRISA_WEB_THREADS", "8"))  # ?wait= invocations hold a thread
timeout = 90  # above the longest ?wait= (60 s)
graceful_timeout = 25  # below the 30 s before SIGKILL (Heroku; compose's stop_grace_period)
keepalive = 5
accesslog = "-"
errorlog = "-"
