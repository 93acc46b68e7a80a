"""Fixtures for the Switchboard black-box integration tests.

Binaries come from $SWITCHBOARD_BIN_DIR (default <repo>/.build/debug); the suite never builds.
Each daemon gets a fresh directory (pytest's tmp_path) holding its config YAML, its SQLite store
and its captured stdout/stderr; the log tail is printed when a test fails.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import switchboard_harness as h  # noqa: E402


def pytest_report_header(config):
    return f"switchboard binaries: {h.source_bin_dir()} (copied to a per-run snapshot)"


@pytest.fixture(scope="session", autouse=True)
def _binaries_present(tmp_path_factory):
    missing = [str(p) for p in (h.daemon_bin(), h.cli_bin()) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"switchboard binaries missing: {missing} "
                    f"(build first, or set SWITCHBOARD_BIN_DIR)", pytrace=False)
    if os.environ.get("SWITCHBOARD_TEST_NO_SNAPSHOT") != "1":
        h.snapshot_binaries(tmp_path_factory.mktemp("bin"))


_DAEMONS: list = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for d in getattr(item, "_switchboard_daemons", []):
            rep.sections.append((f"switchboardd log ({d.workdir})", d.log_tail(60)))
        for k in getattr(item, "_kannels", []):
            rep.sections.append((f"kannel logs ({k.dir})", k.tail("bearerbox", 15) + k.tail("smsbox", 15)))


@pytest.fixture
def receiver():
    """A running outbound receiver (signature checked with OUTBOUND_SECRET)."""
    r = h.Receiver().start()
    yield r
    r.close()


@pytest.fixture
def down_receiver():
    """A receiver whose port is reserved but refuses connections until ``.start()``."""
    r = h.Receiver().reserve()
    yield r
    r.close()


@pytest.fixture
def make_daemon(tmp_path, request):
    """Factory: make_daemon(outbound_url=..., overrides={...}, env={...}, start=True, port=None)."""
    made: list[h.Daemon] = []
    request.node._switchboard_daemons = made

    def factory(outbound_url: str = "", overrides: dict | None = None, env: dict | None = None,
                start: bool = True, name: str | None = None, port: int | None = None) -> h.Daemon:
        d = h.Daemon(tmp_path / (name or f"d{len(made)}"), port=port, outbound_url=outbound_url,
                     overrides=overrides, env=env)
        made.append(d)
        if start:
            d.start()
        return d

    yield factory
    for d in made:
        d.cleanup()


@pytest.fixture
def daemon(make_daemon, receiver):
    """A running daemon whose outbound_url points at the ``receiver`` fixture."""
    return make_daemon(outbound_url=receiver.url)


@pytest.fixture
def admin(daemon):
    a = daemon.add_agent(role="admin")
    return daemon.api(a)


@pytest.fixture
def agent(daemon):
    """A role=agent agent: (agent dict, Api)."""
    a = daemon.add_agent(role="agent")
    return a, daemon.api(a)


# --------------------------------------------------------------------------------------------
# SMS channel (tests/sms_harness.py)


@pytest.fixture
def fake_twilio():
    """A running fake of Twilio's Messages REST API (checks Basic auth with sms_harness.TWILIO_SID/TOKEN)."""
    import sms_harness as sms
    f = sms.FakeTwilioAPI().start()
    yield f
    f.stop()


@pytest.fixture
def make_kannel(tmp_path, request):
    """Factory: make_kannel(daemon_port) -> a started Kannel (bearerbox + smsbox on free ports) whose
    sms-services call the daemon on ``daemon_port``. Skips when Kannel is not installed. Stopped after the test;
    on failure the Kannel log tails are attached to the report."""
    import sms_harness as sms
    reason = sms.kannel_installed()
    if reason:
        pytest.skip(reason)
    made: list = []
    request.node._kannels = made

    def factory(daemon_port: int, start: bool = True):
        k = sms.Kannel(tmp_path / f"kannel{len(made)}", daemon_port)
        made.append(k)
        if start:
            k.start()
        return k

    yield factory
    for k in made:
        k.stop()


# --------------------------------------------------------------------------------------------
# Email channel (tests/mail_harness.py)


@pytest.fixture
def make_sink():
    """Factory: make_sink(**MailSink kwargs) -> a started aiosmtpd recording sink (the daemon's submission
    server); stopped after the test."""
    import mail_harness as mail
    made: list = []

    def factory(**kw):
        s = mail.MailSink(**kw).start()
        made.append(s)
        return s

    yield factory
    for s in made:
        s.stop()


@pytest.fixture
def make_dovecot():
    """Factory: make_dovecot(start=True) -> a private Dovecot (mail_harness.Dovecot) on free loopback ports.
    Stopped and removed after the test; its log tail is printed at teardown (shown for failed tests)."""
    import mail_harness as mail
    made: list = []

    def factory(start: bool = True):
        d = mail.Dovecot()
        made.append(d)
        if start:
            d.start()
        return d

    yield factory
    for d in made:
        print(d.tail(20))
        d.close()


@pytest.fixture
def mail_cert(tmp_path):
    """(cert, key) of a self-signed certificate for localhost / 127.0.0.1 (the cert is its own CA file)."""
    import mail_harness as mail
    return mail.make_cert(tmp_path / "tls", "mail")


@pytest.fixture
def mail_daemon(make_daemon):
    """Factory: mail_daemon(sink=None, dovecot=None, log_level=None, start=True, **email_keys) -> namespace with
    ``d`` (the daemon, SMTP listener for clinic.example on a free port), ``port`` (that SMTP port) and ``api``
    (an admin agent's Api). ``sink`` = a MailSink for plain submission, ``dovecot`` = a Dovecot polled every
    second over plain IMAP; other keyword arguments override keys of the ``email`` section."""
    from types import SimpleNamespace

    import mail_harness as mail

    def factory(sink=None, dovecot=None, log_level=None, start=True, name=None, **email_kv):
        o = mail.email_overrides(sink=sink, dovecot=dovecot, **email_kv)
        if log_level:
            o["log"] = {"level": log_level, "format": "logfmt"}
        d = make_daemon(overrides=o, start=start, name=name)
        api = d.api(d.add_agent(role="admin")) if start else None
        return SimpleNamespace(d=d, port=mail.smtp_port_of(d), api=api)

    return factory
