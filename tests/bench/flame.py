"""A flame graph of the worker while it runs fanout1000: where a try's CPU goes.

    python -m tests.bench.flame [--backend postgres|embedded] [--runs N] [--quick] [-o SVG]

Starts the Procfile's processes as ``make bench`` does (Postgres + Redis of the bench's own,
one worker of 4 threads), warms the worker up (a full-size fan-out too), then samples it with
py-spy (100 times a second, its subprocesses too: the fork server and the tries' children)
while it runs ``runs`` fan-outs of 1,000 no-op tasks, and writes the flame graph (default
docs/bench/worker-fanout1000.svg; ``--quick``: 20 tasks wide, to /tmp). py-spy reads the
worker's memory with ptrace: it must be allowed (root, or kernel.yama.ptrace_scope 0).
"""

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests.bench import suite, workloads
from tests.bench.servers import private_servers
from tests.system import ROOT, procfile_system

FLAME = ROOT / "docs" / "bench" / "worker-fanout1000.svg"
RATE = 100  # samples a second
WIDTH, QUICK_WIDTH = 1000, 20


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: make install (requirements-dev.txt)")
    return found


def record(pid: int, output: Path) -> subprocess.Popen:
    command = [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--rate", str(RATE)]
    command += ["--nonblocking", "--format", "flamegraph", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_recording(spy: subprocess.Popen) -> str:
    """Ctrl-C, as a person would: py-spy writes the graph and exits. Its output."""
    spy.send_signal(signal.SIGINT)
    output, _ = spy.communicate(timeout=120)
    if spy.returncode not in (0, -signal.SIGINT):
        raise RuntimeError(f"py-spy failed ({spy.returncode}):\n{output}")
    return output


def profile(system, width: int, runs: int, output: Path) -> list[float]:
    """The worker sampled while it runs ``runs`` fan-outs ``width`` wide: their rates."""
    workloads.deploy_functions(system.base)
    workloads.put_dag(system.base, workloads.fanout_spec(width))
    suite.warm_up(system.base)
    workloads.fanout_rate(system.base, width)  # the first full-size one is slower: not sampled
    spy = record(suite.worker_of(system).pid, output)
    time.sleep(1)  # py-spy attached
    try:
        rates = [workloads.fanout_rate(system.base, width) for _ in range(runs)]
    finally:
        print(stop_recording(spy).strip())
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.flame")
    parser.add_argument("--backend", choices=("postgres", "embedded"), default="postgres")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_WIDTH} tasks wide")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    width = QUICK_WIDTH if args.quick else WIDTH
    output = args.output or (Path("/tmp/worker-fanout-quick.svg") if args.quick else FLAME)
    threads = {"BRISA_WORKER_THREADS": str(suite.PARALLEL_THREADS)}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brisa-flame-")))
        if args.backend == "postgres":
            threads |= stack.enter_context(private_servers()).env()
        log = stack.enter_context(open(tmp / "processes.log", "w"))
        system = stack.enter_context(procfile_system(args.backend, tmp / "var", log, threads))
        stack.enter_context(workloads.bound_to(system))
        rates = profile(system, width, args.runs, output)
    print(f"fanout{width} on {args.backend}: {', '.join(f'{r:.0f}' for r in rates)} tasks/s")
    print(f"(sampled by py-spy, which slows the worker); the flame graph: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
