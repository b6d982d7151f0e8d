"""``make run``'s parts that need no running system: which log lines the terminal shows,
web's address and its check, the log level, and what gunicorn and the processes make of
BRISA_BIND and BRISA_LOG_LEVEL. The dev server itself runs in tests/e2e/test_make_run.py."""

import logging
import runpy
import socket

import pytest

from app import log_setup
from app.cli import devserver
from app.cli.errors import CliError, UsageError
from app.cli.terminal import Terminal
from tests.system import ROOT

HUEY_INFO = (
    "[2026-12-06 02:47:54,707] INFO:huey:Worker-3:Executing app.broker.run_task_instance: 4f"
)
HUEY_ERROR = "[2026-12-06 02:47:55,001] ERROR:app.worker.try_runner:Worker-1:task instance 3 try 1"
GUNICORN_INFO = "[2026-12-06 02:47:42 +0000] [17909] [INFO] Listening at: http://127.0.0.1:8000"
GUNICORN_WARNING = "[2026-12-06 02:47:42 +0000] [17909] [WARNING] Worker with pid 12 was killed"
JSON_INFO = (
    '{"time": "2026-12-06T02:47:54.707Z", "level": "info", "logger": "huey", "message": "x"}'
)
JSON_ERROR = (
    '{"time": "2026-12-06T02:47:54.707Z", "level": "error", "logger": "app", "message": "y"}'
)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        (HUEY_INFO, logging.INFO),
        (HUEY_ERROR, logging.ERROR),
        (GUNICORN_INFO, logging.INFO),
        (GUNICORN_WARNING, logging.WARNING),
        (JSON_INFO, logging.INFO),
        (JSON_ERROR, logging.ERROR),
        ("Traceback (most recent call last):", logging.ERROR),
        ('  File "/work/app/worker/try_runner.py", line 60, in run_try', None),
        ("+ app.broker.run_task_instance", None),
        ('127.0.0.1 - - [06/Dec/2026:02:47:54 +0000] "GET /api/v1/runs/1 HTTP/1.1" 200', None),
    ],
)
def test_the_level_of_a_log_line(line, level):
    assert devserver.record_level(line) == level


def test_quiet_leaves_out_info_records_with_their_lines_and_paints_the_rest():
    term = Terminal()
    term.colour = True
    echo = devserver.Echo("worker", logging.WARNING, term)
    lines = [
        "Booting",  # before any record: shown
        HUEY_INFO,
        "+ app.broker.run_task_instance",  # continues the INFO record: left out
        HUEY_ERROR,
        "Traceback (most recent call last):",
        "ValueError: boom",  # continues the traceback: shown, red
        GUNICORN_WARNING,
        GUNICORN_INFO,
    ]
    shown = [echo.shown_line(line) for line in lines]
    red, yellow = "\x1b[31m", "\x1b[33m"
    assert shown == [
        "worker | Booting",
        None,
        None,
        f"worker | {red}{HUEY_ERROR}\x1b[0m",
        f"worker | {red}Traceback (most recent call last):\x1b[0m",
        f"worker | {red}ValueError: boom\x1b[0m",
        f"worker | {yellow}{GUNICORN_WARNING}\x1b[0m",
        None,
    ]


def test_verbose_shows_every_line():
    echo = devserver.Echo("web", logging.INFO, Terminal())
    assert [echo.shown_line(line) for line in (GUNICORN_INFO, "continued")] == [
        f"   web | {GUNICORN_INFO}",
        "   web | continued",
    ]


def test_the_log_level_is_a_name_logging_has():
    assert devserver.log_threshold("WARNING") == logging.WARNING
    assert devserver.log_threshold("debug") == logging.DEBUG
    with pytest.raises(UsageError, match="BRISA_LOG_LEVEL='loud': expected one of debug"):
        devserver.log_threshold("loud")


def test_the_dev_server_binds_loopback_and_is_quiet_unless_told(monkeypatch):
    for name in ("BRISA_BIND", "BRISA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    quiet, verbose = devserver.environment(8123, False), devserver.environment(8123, True)
    assert (quiet["BRISA_BIND"], quiet["PORT"], quiet["BRISA_LOG_LEVEL"]) == (
        "127.0.0.1",
        "8123",
        "warning",
    )
    assert verbose["BRISA_LOG_LEVEL"] == "info"
    monkeypatch.setenv("BRISA_BIND", "0.0.0.0")
    monkeypatch.setenv("BRISA_LOG_LEVEL", "debug")
    told = devserver.environment(8123, False)
    assert (told["BRISA_BIND"], told["BRISA_LOG_LEVEL"]) == ("0.0.0.0", "debug")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("192.168.1.5", "http://192.168.1.5:8000"),
        ("::1", "http://[::1]:8000"),
    ],
)
def test_the_address_to_open(host, url):
    assert devserver.web_url(host, 8000) == url


def test_a_busy_port_is_named_with_what_to_set():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(CliError, match=f"port {port} is in use on 127.0.0.1: set PORT"):
            devserver.check_address("127.0.0.1", port)
    devserver.check_address("127.0.0.1", port)  # free again: no error


def test_an_address_of_another_machine_is_a_usage_error():
    with pytest.raises(UsageError, match="BRISA_BIND='192.0.2.1' is not an address"):
        devserver.check_address("192.0.2.1", 8000)  # TEST-NET-1: never this machine's


@pytest.mark.parametrize(
    ("env", "bind", "accesslog"),
    [
        ({}, "0.0.0.0:8000", "-"),  # the Procfile's default: every interface (Heroku, compose)
        ({"BRISA_BIND": "127.0.0.1", "PORT": "9000"}, "127.0.0.1:9000", "-"),
        ({"BRISA_BIND": "::1"}, "[::1]:8000", "-"),
        ({"BRISA_LOG_LEVEL": "warning"}, "0.0.0.0:8000", None),
        ({"BRISA_LOG_LEVEL": "DEBUG"}, "0.0.0.0:8000", "-"),
    ],
)
def test_gunicorn_takes_its_address_and_log_level_from_the_environment(
    env, bind, accesslog, monkeypatch
):
    for name in ("BRISA_BIND", "PORT", "BRISA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(ROOT / "infra" / "gunicorn.conf.py"))
    assert (conf["bind"], conf["accesslog"]) == (bind, accesslog)


def test_the_processes_take_brisa_log_level(monkeypatch):
    root = logging.getLogger()
    before = root.level
    monkeypatch.setenv("BRISA_LOG_LEVEL", "warning")
    try:
        log_setup.configure()
        assert root.level == logging.WARNING
        monkeypatch.setenv("BRISA_LOG_LEVEL", "debug")
        log_setup.configure()
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)
