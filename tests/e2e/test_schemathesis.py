"""schemathesis against the live app: real gunicorn, worker and clock on Postgres + Redis,
the example functions and DAGs deployed, every operation of /api/v1/openapi.json fuzzed; no
5xx, and every response's status, content type and body as the document says."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.system import ROOT, deploy_examples_over_http, procfile_system

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = int(os.environ.get("BRISA_SCHEMATHESIS_EXAMPLES", "100"))
SEED = os.environ.get("BRISA_SCHEMATHESIS_SEED", "20261125")
# Nothing but 127.0.0.1: outbound HTTP of the processes (async-invoke callbacks to a fuzzed
# callback_url, the http runtime) goes to a closed local port instead of the network.
NO_NETWORK = {
    name: "http://127.0.0.1:9"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy")
}
NO_NETWORK.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
# Operations left out, each with the reason (see docs/api.md).
EXCLUDED: list[str] = []


def schemathesis_command(base: str, report_dir: Path) -> list[str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [
        st,
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "75",  # invoke may wait up to 60 s for a result
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    for operation in EXCLUDED:
        command += ["--exclude-name", operation]
    return command


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(tmp_path, capsys):
    backend = os.environ.get("BRISA_SCHEMATHESIS_BACKEND", "postgres")
    with procfile_system(backend, tmp_path / "var", extra_env=NO_NETWORK) as system:
        deploy_examples_over_http(system.base)
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(
            NO_PROXY="*",
            no_proxy="*",
            SCHEMATHESIS_TELEMETRY="false",
            PYTHONPATH=str(ROOT),
        )
        outcome = subprocess.run(
            schemathesis_command(system.base, tmp_path / "schemathesis"),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=540,
        )
    output = outcome.stdout + outcome.stderr
    starts = [output.find(f"=== {part}") for part in ("FAILURES", "WARNINGS", "SUMMARY")]
    summary = output[min([i for i in starts if i >= 0], default=0) :]
    print(summary)
    with capsys.disabled():
        sys.stdout.write("\n" + summary + "\n")
    assert outcome.returncode == 0, output
