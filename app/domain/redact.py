"""What Brisa writes about a database connection never names it: host, port, user, role,
database and socket are redacted from errors and log lines (drivers such as libpq put them
in their messages), and a connection URL is shown as its scheme only."""

import re

_PATTERNS = [
    (re.compile(r"\b(postgres(?:ql)?|redis|rediss|sqlite)://\S+"), r"\1://***"),
    (re.compile(r'\b(at|host|user|role|database|socket|server) "[^"]*"'), r'\1 "***"'),
    (re.compile(r"\b(port) \d+"), r"\1 ***"),
    (re.compile(r"\b(host|hostaddr|port|user|dbname|password)=\S+"), r"\1=***"),
]


def connection_details(text: str) -> str:
    """``text`` with every connection detail replaced by ``***``, e.g. 'connection to server
    at "127.0.0.1", port 5432 failed: FATAL: role "etl_user" does not exist' -> 'connection
    to server at "***", port *** failed: FATAL: role "***" does not exist'."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
