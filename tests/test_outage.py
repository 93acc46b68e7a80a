"""Egress outages: every peer the replies go to is down at once, then back.

One daemon, three egresses, all down from the start: the portal's inbound endpoint (port
bound, not listening: connection refused), the Twilio Messages API (the faithful fake, not
started) and the SMTP relay (aiosmtpd, not started). A patient writes on each channel; an
agent answers each conversation three times while everything is down. Then:

- the retries are visible in `switchboard_messages_out_total{outcome="retry"}` per channel,
  and bounded by the backoff (no hot loop);
- once the peers are back, every reply is delivered exactly once, in the order it was
  written, and is `delivered` in the API;
- nothing was dead-lettered.

(Kannel's outage — the SMSC link down, then up — is `tests/test_sms_kannel.py::
test_reply_queued_while_smsc_down_is_sent_when_link_up`, with the real bearerbox.)
"""

from __future__ import annotations

import time
import uuid

import mail_harness as mh
import sms_harness as sh
import switchboard_harness as h

OUTAGE_SECONDS = 4.0


def out_total(d: h.Daemon, channel: str, outcome: str) -> float:
    text = h.requests.get(d.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("switchboard_messages_out_total{") and f'channel="{channel}"' in line and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_egress_down_then_back_delivers_each_reply_once_in_order(make_daemon, down_receiver):
    twilio = sh.FakeTwilioAPI()           # not started: connection refused
    sink = mh.MailSink()                  # not started
    overrides = {**sh.sms_overrides(twilio_api=twilio.url), **mh.email_overrides(sink=sink)}
    overrides["outbox"] = {"initial_backoff_ms": 100, "max_backoff_ms": 500}
    d = make_daemon(outbound_url=down_receiver.url, overrides=overrides)
    admin = d.add_agent(role="admin")
    api = d.api(admin)

    # One conversation per channel.
    r = d.webhook(h.portal_event(h.uid("P-"), "outage test, portal"))
    assert r.status_code == 202, r.text
    portal_cid = r.json()["conversation_id"]
    phone = sh.patient_number()
    sh.twilio_in(d, phone, "outage test, sms")
    sms_cid = sh.wait_sms_conversation(api, phone)["conversation"]["id"]
    address = f"outage.{uuid.uuid4().hex[:8]}@example.net"
    sent = mh.smtp_send(mh.smtp_port_of(d), address, mh.SUPPORT_ADDRESS, mh.build_mail(from_addr=address, text="outage test, email"))
    assert sent.ok, sent
    email_cid = mh.wait_email_conversation(api, address)["conversation"]["id"]

    replies: dict[str, list[tuple[str, str]]] = {}  # channel -> [(message id, text)] in the order written
    for channel, cid in (("portal", portal_cid), ("sms", sms_cid), ("email", email_cid)):
        api.claim(cid)
        replies[channel] = []
        for n in range(3):
            text = f"Reply {n + 1} on {channel} {uuid.uuid4().hex[:6]}"
            replies[channel].append((api.reply(cid, text), text))

    # Each egress fails and says so (an HTTP attempt to a refusing peer fails at once; the
    # outbox's backoff paces the next); then the outage goes on a little longer.
    started = time.monotonic()
    h.wait_until(lambda: all(out_total(d, channel, "retry") > 0 for channel in replies), 15, 0.2,
                 what="a retry on every channel")
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    elapsed = time.monotonic() - started
    for channel in replies:
        count = out_total(d, channel, "retry")
        # One attempt at a time per conversation, backoff from 100 ms doubling to 500 ms:
        # at most a couple of attempts a second, never a hot loop.
        assert count <= 3 * elapsed + 3, f"{count} retries for {channel} in {elapsed:.1f} s"

    down_receiver.start()
    twilio.start()
    sink.start()
    try:
        for channel, cid in (("portal", portal_cid), ("sms", sms_cid), ("email", email_cid)):
            for message_id, _ in replies[channel]:
                # Twilio and the relay took it: `sent` (`delivered` needs the carrier's report).
                h.wait_until(lambda c=cid, m=message_id: (api.message(c, m) or {}).get("delivery_status") in ("sent", "delivered"),
                             30, 0.1, what=f"{channel} reply {message_id} sent")

        portal_seen = [rec.message_id for rec in sorted(down_receiver.accepted(), key=lambda rec: rec.t)
                       if rec.message_id in {m for m, _ in replies["portal"]}]
        assert portal_seen == [m for m, _ in replies["portal"]], portal_seen

        texts = [t for _, t in replies["sms"]]
        sms_seen = [call.form.get("Body") for call in sorted(twilio.calls, key=lambda c: c.t)
                    if call.form.get("Body") in texts and 200 <= call.status < 300]
        assert sms_seen == texts, sms_seen

        texts = [t for _, t in replies["email"]]
        mail_seen = []
        for message in sorted(sink.messages, key=lambda m: m.t):
            body = message.msg.get_body(("plain",)).get_content()
            mail_seen += [t for t in texts if t in body]
        assert mail_seen == texts, mail_seen

        for channel in replies:
            assert out_total(d, channel, "delivered") >= 3
            assert out_total(d, channel, "dead") == 0
    finally:
        twilio.stop()
        sink.stop()
