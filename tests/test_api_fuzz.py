"""API fuzzing: schemathesis against the daemon's own OpenAPI document.

Schemathesis reads /api/v1/openapi.json and generates requests for every operation: from the
examples, from the edges of every schema (coverage), at random (fuzzing) and as sequences
(stateful). With an admin's token, and with Twilio and Kannel configured so that their
webhooks answer for real, every response must:

- never be a 5xx;
- have a status code, content type, headers and body the document declares;
- reject what the schema forbids, and accept what it allows (missing auth included).

The two WebSocket routes (/chat, /api/v1/events) are left out: a plain GET on them is
answered 426 by design. Methods the document does not list are answered 404 by the router,
not 405, so that check is left out too.

SCHEMATHESIS_MAX_EXAMPLES (default 25) and SCHEMATHESIS_SEED (default 1: CI repeats what
ran here) tune the run; `st replay ID` reproduces a failure from its report.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import sms_harness as sh
import switchboard_harness as h

ST = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "schemathesis"


@pytest.mark.slow
def test_every_documented_operation_holds_up_under_generated_requests(make_daemon, tmp_path):
    if not ST.exists():
        pytest.fail("schemathesis is not installed in .venv (make test-deps installs tests/requirements.txt)")
    overrides = sh.sms_overrides(kannel_inbound=True)
    d = make_daemon(overrides=overrides)
    admin = d.add_agent(role="admin")
    # Something to find: a conversation, so that list and search operations return rows.
    assert d.webhook(h.portal_event("P-api-fuzz", "a conversation for the API fuzzer")).status_code == 202
    command = [
        str(ST), "run", f"{d.url}/api/v1/openapi.json",
        "-H", f"Authorization: Bearer {admin['token']}",
        "--checks", "all", "--exclude-checks", "unsupported_method",
        "--exclude-path", "/chat", "--exclude-path", "/api/v1/events",
        "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
        "--seed", os.environ.get("SCHEMATHESIS_SEED", "1"),
        "--workers", "2", "--no-color",
    ]
    config = Path(__file__).resolve().parent / "schemathesis.toml"
    command.insert(1, f"--config-file={config}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = result.stdout + result.stderr
    summary = report[report.rfind("SUMMARY"):] if "SUMMARY" in report else report[-3000:]
    print(summary)
    assert result.returncode == 0, f"schemathesis found problems:\n{report[-12000:]}"
    assert "Tested:" in report, report[-3000:]
    assert d.running()
