"""The bench's own Postgres and Redis, and what Postgres counts of the work done on it.

The Postgres + Redis benchmarks run on a cluster and a redis-server of the bench's own
(tests/soak/servers.py starts them, in a temporary folder, on free ports), not on the
machine's shared servers: the counters read here (the statements pg_stat_statements counted,
the database's commits, the write-ahead log's position) are then the bench's alone, and
pg_stat_statements must be preloaded, which the shared server is not. The cluster is set as
the shared one is and as a deployment is: fsync and synchronous_commit on, Debian's defaults
otherwise; only its statistics differ (pg_stat_statements preloaded, utility statements such
as BEGIN, COMMIT and SET not counted as statements). Brisa uses database 0 of the Redis,
bare huey database 1.
"""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.soak.servers import PrivatePostgres, PrivateRedis

DATABASE = "brisa_bench"
STATEMENTS_KEPT = 20_000  # pg_stat_statements.max: an evicted statement's calls are lost


class BenchPostgres(PrivatePostgres):
    """The soak's private cluster, started durable (fsync on), counting statements."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.server_url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.url = f"{self.server_url}/{DATABASE}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        options += " -c shared_preload_libraries=pg_stat_statements"
        options += f" -c pg_stat_statements.max={STATEMENTS_KEPT}"
        options += " -c pg_stat_statements.track_utility=off"
        self._ctl("start", "-o", options, "-l", str(self.folder / "postgres.log"))
        with contextlib.closing(self.connect("postgres")) as connection:
            connection.cursor().execute(f"CREATE DATABASE {DATABASE}")
            connection.cursor().execute("CREATE EXTENSION pg_stat_statements")

    def connect(self, database: str = "postgres"):
        connection = psycopg2.connect(f"{self.server_url}/{database}")
        connection.autocommit = True
        return connection

    def version(self) -> str:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]


@dataclass(frozen=True)
class Servers:
    postgres: BenchPostgres
    redis: PrivateRedis

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        """Brisa's: database 0."""
        return self.redis.url

    @property
    def raw_huey_redis_url(self) -> str:
        """Bare huey's: database 1 of the same server."""
        return self.redis.url.removesuffix("/0") + "/1"

    def env(self) -> dict:
        """What the Procfile's processes are given to use them."""
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}

    def versions(self) -> dict:
        return {"postgres": self.postgres.version(), "redis": self.redis.version()}


@contextlib.contextmanager
def private_servers() -> Iterator[Servers]:
    """A Postgres cluster (with the empty database DATABASE) and a redis-server of the
    bench's own, started in a folder of /tmp (the postgres user must reach it: not under this
    process's own temporary folder); both stopped and the folder removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="brisa-bench-servers-", dir="/tmp"))
    postgres, queue = BenchPostgres(folder), PrivateRedis(folder)
    try:
        postgres.init()
        postgres.start()
        try:
            queue.start()
            yield Servers(postgres, queue)
        finally:
            queue.crash()
            postgres.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of the bench's database (``read_counts``); subtract two."""

    statements: int  # executed by clients (pg_stat_statements, top level, no utility)
    commits: int  # pg_stat_database.xact_commit
    wal_bytes: int  # the write-ahead log's position: bytes written by the whole cluster

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(
            self.statements - other.statements,
            self.commits - other.commits,
            self.wal_bytes - other.wal_bytes,
        )


COUNTS_SQL = f"""
    SELECT (SELECT COALESCE(SUM(s.calls), 0) FROM pg_stat_statements s
            JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{DATABASE}'),
           (SELECT xact_commit FROM pg_stat_database WHERE datname = '{DATABASE}'),
           pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"""


def read_counts(postgres: BenchPostgres) -> Counts:
    """The counters now, read from the maintenance database (so that reading them adds no
    statement and no commit to the bench's database). Commits are reported by each server
    process at most once a second while busy, and within 10 s once idle: read them after the
    processes that made them exited, or were idle that long."""
    with contextlib.closing(postgres.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(COUNTS_SQL)
        statements, commits, wal = cursor.fetchone()
    return Counts(int(statements), int(commits), int(wal))
