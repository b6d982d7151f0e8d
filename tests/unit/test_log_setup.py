import json
import logging

from app import log_setup as logs


def test_json_lines_when_asked(monkeypatch, capsys):
    monkeypatch.setenv("BRISA_LOG_JSON", "1")
    logger = logging.getLogger("brisa.test")
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.configure()
        logger.warning("hello %s", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        root.removeHandler(handler)
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["message"] == "hello world" and first["level"] == "warning"
    assert first["logger"] == "brisa.test" and first["time"].endswith("Z")
    assert "ValueError: boom" in second["exception"]


def test_plain_lines_by_default(monkeypatch):
    monkeypatch.delenv("BRISA_LOG_JSON", raising=False)
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        logs.configure()
        assert not isinstance(handler.formatter, logs.JsonFormatter)
    finally:
        logging.getLogger().removeHandler(handler)
