"""The soak's own Redis and Postgres, on free ports in a temporary folder: the chaos loop
stops and restarts them, so they must never be the machine's shared servers, which other test
runs use. Postgres refuses to run as root: as root, the cluster belongs to the ``postgres``
user (``runuser``)."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT_S = 60


def free_port() -> int:
    """As tests.system's, which cannot be imported yet: tests.conftest reads the servers' URLs
    from the environment when it is imported (``environment`` sets them)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin(program: str) -> str:
    """The newest installed Postgres' ``program`` (Debian keeps them off PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_major_version)
    path = found[-1] if found else shutil.which(program)
    if path is None:
        raise RuntimeError(f"{program} not found: install PostgreSQL's server")
    return path


def _major_version(path: str) -> int:
    return int(Path(path).parts[-3])


class PrivateRedis:
    """redis-server on its own port, no persistence (a restart empties it, as a lost Redis
    machine would): ``url`` is database 0."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir"]
        command.append(str(self.folder))
        with open(self.folder / "redis.log", "a") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def crash(self) -> None:
        """SIGKILL: whatever it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def version(self) -> str:
        return redis.Redis.from_url(self.url).info()["redis_version"]


class PrivatePostgres:
    """A Postgres cluster of its own (initdb into a temporary folder, trust authentication,
    fsync off: only processes crash here, never the machine), on its own port."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.data = folder / "pgdata"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/brisa_soak"

    def _as_owner(self, program: str, *args: str) -> list[str]:
        command = [postgres_bin(program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")
            + ["--no-sync", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        options += " -c fsync=off -c max_connections=300"
        self._ctl("start", "-o", options, "-l", str(self.folder / "postgres.log"))

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend is killed at once, and the next start
        recovers from the write-ahead log, as after a crash."""
        self._ctl("stop", "-m", "immediate")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-m", "fast")

    def _ctl(self, action: str, *args: str) -> None:
        command = self._as_owner("pg_ctl", "-D", str(self.data), "-w", "-t", "60", *args)
        subprocess.run(
            [*command, action], check=True, stdout=subprocess.DEVNULL, timeout=START_TIMEOUT_S
        )


@contextlib.contextmanager
def private_servers(folder: Path):
    """A Postgres cluster and a Redis of the soak's own in ``folder``, started, and named in
    the environment the test helpers read (tests/conftest.py) so that the Procfile processes
    and this process use them; both stopped on exit. Yields (postgres, redis)."""
    postgres, queue = PrivatePostgres(folder), PrivateRedis(folder)
    postgres.init()
    postgres.start()
    try:
        queue.start()
        os.environ.update(
            BRISA_TEST_DATABASE_URL=postgres.url,
            BRISA_TEST_REDIS_URL=queue.url,
            BRISA_E2E_REDIS_URL=queue.url,
        )
        yield postgres, queue
    finally:
        queue.crash()
        postgres.stop()
