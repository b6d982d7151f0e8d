"""Log levels and structured logs: BRISA_LOG_LEVEL (debug, info, warning, error; unset: as the
process set it up, info) is the level of the root logger; with BRISA_LOG_JSON=1, every log
line is one JSON object."""

import json
import logging
import os
import time

LOGGERS = ("", "gunicorn.error", "gunicorn.access", "huey")


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # timestamps in UTC, like everything else

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure() -> None:
    """Set BRISA_LOG_LEVEL, and put the JSON formatter on the handlers that exist (call after
    the process — gunicorn, huey's consumer — has set up its own logging)."""
    level = os.environ.get("BRISA_LOG_LEVEL")
    if level:
        logging.getLogger().setLevel(level.upper())
    if os.environ.get("BRISA_LOG_JSON") != "1":
        return
    formatter = JsonFormatter()
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
