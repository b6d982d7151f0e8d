"""``python -m app.sandbox.load_check``: the deploy check of a function, in a process of its own.

Reads one Job as JSON on stdin (``check_only`` is forced), confines itself as a try's child does
(scratch directory, environment, memory and CPU limits), executes the module and checks the
handler, and writes one JSON line to its stdout: ``{"ok": true}`` or ``{"ok": false, "error":
"..."}``. What the module prints goes to stderr. The deploying process runs it with a
timeout and kills its process group, so a module that hangs or forks at import fails the
check, not the web server.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile

from app.sandbox import child
from app.sandbox.job import Job


def main() -> None:
    job = Job.from_json(sys.stdin.read())
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the module's prints must not mix with the answer
    workdir = tempfile.mkdtemp(prefix="brisa-check-")
    try:
        job = dataclasses.replace(job, check_only=True, workdir=workdir)
        child.confine(job)
        outcome = child.call(job)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = outcome[0] == "ok"
    answer.write(json.dumps({"ok": ok, "error": None if ok else outcome[1]}) + "\n")
    answer.flush()


if __name__ == "__main__":
    main()
