"""SIGHUP reloads what can change at runtime — the log level and the routing settings at
once — logs which keys changed (names only), names those that need a restart, and refuses a
bad configuration while the one in force stays."""
from __future__ import annotations

import signal
import sqlite3

import switchboard_harness as h
from switchboard_harness import portal_event, to_yaml, uid


def rewrite(d: h.Daemon, **sections) -> None:
    for section, values in sections.items():
        d.config.setdefault(section, {}).update(values)
    d.config_path.write_text(to_yaml(d.config))


def hup(d: h.Daemon, marker: str, count_before: int) -> None:
    d.proc.send_signal(signal.SIGHUP)
    h.wait_until(lambda: d.log_text().count(marker) > count_before, 10, what=marker)


def test_sighup_changes_the_log_level_and_names_changed_keys(make_daemon):
    d = make_daemon(overrides={"triage": {"enabled": False}})
    admin = d.add_agent(role="admin")
    assert "level=debug" not in d.log_text()
    rewrite(d, log={"level": "debug"}, outbox={"poll_interval_ms": 500}, routing={"offer_timeout_seconds": 5})
    hup(d, 'msg="configuration reloaded"', 0)
    line = next(l for l in d.log_text().splitlines() if 'msg="configuration reloaded"' in l)
    assert "log.level" in line and "routing.offer_timeout_seconds" in line and "outbox.poll_interval_ms" in line, line
    assert "restart_needed=outbox.poll_interval_ms" in line, line
    # Debug lines now appear (routing decisions are logged at debug).
    set_online = d.api(admin).put("/me/presence", {"presence": "online"})
    assert set_online.status_code == 200
    r = d.webhook(portal_event(uid("P-"), "debug me"))
    assert r.status_code == 202
    h.wait_until(lambda: 'level=debug msg="routing decision"' in d.log_text(), 10, what="a debug line after the reload")
    # The new offer timeout applies to the next offer: it expires 5 s after it was made.
    def offer_lifetime():
        db = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT expires_at - offered_at FROM offers WHERE conversation_id = ?",
                             (r.json()["conversation_id"],)).fetchone()
        finally:
            db.close()
        return row[0] if row else None
    assert 4900 <= h.wait_until(offer_lifetime, 10, what="the offer") <= 5000


def test_sighup_refuses_a_bad_configuration(make_daemon):
    d = make_daemon()
    rewrite(d, routing={"offer_timeout_seconds": 0})
    hup(d, "configuration reload refused", 0)
    line = next(l for l in d.log_text().splitlines() if "configuration reload refused" in l)
    assert "key=routing.offer_timeout_seconds" in line and "level=error" in line, line
    # Still serving with the configuration in force.
    assert d.webhook(portal_event(uid("P-"), "still here")).status_code == 202
    # Fixed: the next SIGHUP takes it.
    rewrite(d, routing={"offer_timeout_seconds": 20})
    hup(d, 'msg="configuration reloaded"', 0)


def test_reload_log_never_prints_secret_values(make_daemon):
    d = make_daemon()
    new_secret = h.make_secret(b"rotated-secret-for-reload-test-1")
    rewrite(d, portal={"webhook_secret": new_secret})
    hup(d, 'msg="configuration reloaded"', 0)
    line = next(l for l in d.log_text().splitlines() if 'msg="configuration reloaded"' in l)
    assert "portal.webhook_secret" in line and "restart_needed=portal.webhook_secret" in line, line
    assert new_secret not in d.log_text() and new_secret.split("_", 1)[1] not in d.log_text()
