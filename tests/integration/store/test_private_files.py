"""The embedded default's files are its owner's only (#16.10): brisa.db and queue.db hold
every function's source and the encrypted secrets, as admin_token and secret_key do."""

import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_database_and_the_queue_are_created_readable_by_their_owner_only(tmp_path):
    var = tmp_path / "var"
    env = {"PYTHONPATH": str(ROOT), "BRISA_VAR_DIR": str(var), "PATH": "/usr/bin:/bin"}
    commands = [
        [sys.executable, "-m", "app", "migrate"],
        [sys.executable, "-c", "import app.broker"],
    ]
    for command in commands:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    for name in ("brisa.db", "queue.db"):
        mode = stat.S_IMODE((var / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
