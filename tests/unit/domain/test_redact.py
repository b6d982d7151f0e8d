"""Connection details never appear in what Brisa writes about a connection (#16.9)."""

import pytest

from app.domain import redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            'connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "etl_user"'
            " does not exist",
            'connection to server at "***", port *** failed: FATAL:  role "***" does not exist',
        ),
        ('FATAL:  database "warehouse_db" does not exist', 'FATAL:  database "***" does not exist'),
        (
            'connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed',
            'connection to server on socket "***" failed',
        ),
        (
            "could not connect: postgresql://u:pw@db.internal:5432/x?sslmode=require",
            "could not connect: postgresql://***",
        ),
        ("host=db.internal port=6543 user=etl dbname=x", "host=*** port=*** user=*** dbname=***"),
        ("a plain error", "a plain error"),
    ],
)
def test_connection_details_are_redacted(text, shown):
    assert redact.connection_details(text) == shown
