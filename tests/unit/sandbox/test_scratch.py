"""A worker's scratch folder; those of dead workers are removed at start-up (#16.7)."""

import os
import tempfile

from app.sandbox import scratch


def test_claim_removes_dead_workers_folders_and_keeps_live_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored after the test
    dead = tmp_path / f"{scratch.PREFIX}999999999"  # above any pid Linux hands out
    (dead / "brisa-try-abc").mkdir(parents=True)
    (dead / "pymp-xyz").mkdir()
    live = tmp_path / f"{scratch.PREFIX}1"  # init: always running
    live.mkdir()
    other = tmp_path / "someone-elses"
    other.mkdir()
    mine = scratch.claim(str(tmp_path))
    assert mine == tmp_path / f"{scratch.PREFIX}{os.getpid()}"
    assert tempfile.gettempdir() == str(mine)
    assert not dead.exists() and live.exists() and other.exists()
    assert tempfile.mkdtemp(prefix="brisa-try-").startswith(str(mine))
