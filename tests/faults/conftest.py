"""Fault injection against real processes (gunicorn, huey consumers, the clock) on Postgres +
Redis. Each test records a row; the table is printed at the end of the session."""

import pytest

ROWS: list[dict] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: injects a real fault into real processes")
    config.addinivalue_line("markers", "own_servers: stops Postgres or Redis: gets its own")


@pytest.fixture
def report():
    """Call with fault=, runs=, lost=, duplicated=, recover_s= to add a row to the table."""
    return lambda **row: ROWS.append(row)


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    terminalreporter.section("fault injection")
    header = f"{'fault':<44} {'runs':>5} {'lost':>5} {'duplicated':>10} {'recovered in':>13}"
    terminalreporter.write_line(header)
    for row in ROWS:
        terminalreporter.write_line(
            f"{row['fault']:<44} {row['runs']:>5} {row['lost']:>5} {row['duplicated']:>10} "
            f"{row['recover_s']:>12.1f}s"
        )
