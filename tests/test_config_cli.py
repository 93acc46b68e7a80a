"""`switchboard config check|show`: the effective configuration, where each value came from,
secrets never printed."""
from __future__ import annotations

import json
import subprocess

import switchboard_harness as h


def run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(h.cli_bin()), *args], capture_output=True, text=True, timeout=60,
                          env=h.clean_env(env), cwd=cwd)


def test_show_redacts_secrets_and_names_sources(tmp_path):
    secret = h.make_secret(b"config-show-secret-0123456789abc")
    config = tmp_path / "switchboard.yaml"
    config.write_text(f"http:\n  port: 9123\nportal:\n  webhook_secret: \"{secret}\"\n")
    cp = run("config", "show", "--config", str(config), "--json", env={"SWITCHBOARD_LOG_LEVEL": "debug"}, cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    values = {v["key"]: v for v in json.loads(cp.stdout)}
    assert values["http.port"]["value"] == "9123" and values["http.port"]["source"] == "file"
    assert values["log.level"]["value"] == "debug" and values["log.level"]["source"] == "environment"
    assert values["http.host"]["source"] == "default" and values["http.host"]["value"] == "127.0.0.1"
    assert values["portal.webhook_secret"]["value"] == "<redacted>" and values["portal.webhook_secret"]["secret"] is True
    assert secret not in cp.stdout and secret.split("_", 1)[1] not in cp.stdout
    # Every documented key is listed.
    assert {"routing.offer_timeout_seconds", "events.retention_seconds", "triage.enabled"} <= set(values)

    text = run("config", "show", "--config", str(config), "--non-default", cwd=tmp_path).stdout
    lines = [l for l in text.splitlines() if l.strip()]
    assert any(l.startswith("http.port = 9123") and "# file" in l for l in lines), lines
    assert any(l.startswith("portal.webhook_secret = <redacted>") for l in lines), lines
    assert not any(l.startswith("http.host") for l in lines), lines
    assert secret not in text


def test_check_names_the_bad_key(tmp_path):
    config = tmp_path / "switchboard.yaml"
    config.write_text("routing:\n  offer_timeout_seconds: 0\n")
    cp = run("config", "check", "--config", str(config), cwd=tmp_path)
    assert cp.returncode == 78 and "routing.offer_timeout_seconds" in cp.stderr, cp.stderr
    config.write_text("routing:\n  offer_timeout_secs: 5\n")
    cp = run("config", "check", "--config", str(config), cwd=tmp_path)
    assert cp.returncode == 78 and "offer_timeout_secs" in cp.stderr, cp.stderr
    config.write_text("routing:\n  offer_timeout_seconds: 45\n")
    cp = run("config", "check", "--config", str(config), "--json", cwd=tmp_path)
    assert cp.returncode == 0 and json.loads(cp.stdout) == {"ok": True}
