"""Where a worker's tries get their scratch directories: one folder per worker process,
``<system temp>/brisa-worker-<pid>``, which also holds multiprocessing's own (``pymp-*``).
A worker killed mid-try leaves its folder behind; the next worker to start on the machine
removes the folders of processes that no longer run."""

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "brisa-worker-"


def claim(root: str | None = None) -> Path:
    """Make this process's folder and send every temporary file and directory it creates
    there (``tempfile.tempdir``); first remove the folders of dead workers. Returns it."""
    base = Path(root or tempfile.gettempdir())
    remove_abandoned(base)
    mine = base / f"{PREFIX}{os.getpid()}"
    mine.mkdir(mode=0o700, exist_ok=True)
    tempfile.tempdir = str(mine)
    return mine


def remove_abandoned(base: Path) -> list[Path]:
    """Remove ``brisa-worker-<pid>`` folders whose process is gone; returns them."""
    removed = []
    for folder in base.glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX)
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
