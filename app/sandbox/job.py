"""The contract between the worker and a try's process: the Job it runs, and the two ways a
call ends besides returning (``SkipTask``, ``Failed``).

Standard library only: the fork server unpickles a Job and the deploy check decodes one from
JSON (``Job.from_json``), both without Brisa's dependencies.
"""

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Job:
    """One call of a function version, all plain data.

    runtime: ``python``, ``http``, ``sql`` or ``shell``.
    source: the python module's source, or the other runtimes' JSON spec.
    handler: python only: the name of ``def handler(event, context)`` in the module.
    filename: the module's name in tracebacks, ``<function NAME vN>``.
    event: ``{"conf", "args", "upstream"[, "trigger"]}`` (docs/functions.md).
    context: the run's facts: run_id, dag_id, task_id, try_number, max_tries, logical_date,
        data_interval_start, data_interval_end, run_type.
    secrets: the granted secrets, name -> value; given to the call, never put in its
        environment.
    env: the version's environment variables.
    memory_mb: the address-space limit, MiB.
    cpu_s: the CPU-time limit, seconds (None: none besides the wall-clock timeout).
    max_processes: RLIMIT_NPROC while the call runs: processes the worker's user may have
        (None: as the worker has it). Not enforced for root.
    max_file_bytes: RLIMIT_FSIZE: the largest file the call may write (None: no limit);
        writing past it fails with "File too large".
    result_cap_bytes: the largest JSON result accepted, bytes.
    check_only: load the module and check the handler, call nothing (the deploy check).
    workdir: the scratch directory the call runs in (made and removed by the supervisor).
    """

    runtime: str
    source: str
    handler: str
    filename: str
    memory_mb: int
    result_cap_bytes: int
    event: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    cpu_s: float | None = None
    max_processes: int | None = None
    max_file_bytes: int | None = None
    check_only: bool = False
    workdir: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        return cls(**json.loads(text))


class SkipTask(Exception):
    """Raised by ``context.skip(reason)``: the task ends ``skipped``, not failed."""


class Failed(Exception):
    """Raised by a runtime: the try fails with this message, which says it all (no traceback
    of Brisa's own code in the log)."""
