"""Email out: agent replies submitted to an aiosmtpd sink (mail_harness.MailSink). Threading headers,
Reply-To token, MIME shape; the patient's answers thread back (In-Reply-To, Reply-To token) while a
fresh mail starts a new conversation; retries on 4xx with a stable Message-ID, dead letter on 5xx;
no header injection; DSN bounces fail the reply; auto-replies trigger nothing; submission over
STARTTLS + AUTH with a private CA, and never in clear text when TLS is required; no PHI in the logs."""

from __future__ import annotations

import email.utils
import re
import time

import pytest

import mail_harness as mail
from mail_harness import (CLINIC_DOMAIN, SINK_PASSWORD, SINK_USER, SUPPORT_ADDRESS, SUPPORT_NAME, build_dsn,
                          build_mail, find_email_conversations, inbound, inbound_texts, smtp_send,
                          wait_email_conversation)
from switchboard_harness import uid, wait_until

TOKEN_ADDRESS = re.compile(r"support\+([a-z0-9]{8,40})@clinic\.example", re.I)
OUR_MESSAGE_ID = re.compile(r"<[^<>@\s]+@clinic\.example>")


def patient(prefix: str = "out") -> str:
    return f"{prefix}.{uid()}@example.net"


def norm(text: str) -> str:
    return " ".join(text.split())


def patient_mail_in(env, addr: str, *, subject: str = "Appointment", text: str = "Can I come in at 3pm?",
                    message_id: str | None = None, name: str | None = "Maria Lopez", **kw) -> dict:
    """The patient writes in over SMTP; returns the conversation detail once stored."""
    raw = build_mail(from_addr=addr, from_name=name, subject=subject, text=text,
                     message_id=message_id or f"<{uid('pt.')}@example.net>", **kw)
    res = smtp_send(env.port, addr, kw.get("to") or SUPPORT_ADDRESS, raw)
    assert res.ok, res
    return wait_email_conversation(env.api, addr, timeout=10)


def start_and_reply(env, sink, addr: str, reply_text: str, **kw) -> tuple[str, str, mail.SinkMessage]:
    """Patient mail in, agent claims and replies; returns (conversation id, reply message id, sink message)."""
    det = patient_mail_in(env, addr, **kw)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, reply_text)
    [sm] = sink.wait_messages(1, timeout=20)
    return cid, rid, sm


def plain_and_html(msg) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None, f"no text/plain + text/html: {msg.get_content_type()}"
    return plain.get_content(), html.get_content()


# ---------------------------------------------------------------------------------------------


def test_agent_reply_reaches_sink_with_threading_headers(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient("maria")
    reply_text = "Hola María: sí, el jueves a las 15:00 está bien ✓\n\nSee you then."
    cid, rid, sm = start_and_reply(env, sink, addr, reply_text, message_id="<patient-1@example.net>",
                                   subject="Appointment")
    msg = sm.msg
    assert sm.rcpt_tos == [addr], sm.rcpt_tos
    assert sm.mail_from.lower().endswith("@" + CLINIC_DOMAIN), f"envelope sender {sm.mail_from!r}"
    name, frm = email.utils.parseaddr(msg["From"])
    assert frm == SUPPORT_ADDRESS and name == SUPPORT_NAME, msg["From"]
    assert [a for _, a in email.utils.getaddresses([msg["To"]])] == [addr], msg["To"]
    assert msg["Subject"] == "Re: Appointment", msg["Subject"]
    assert msg["In-Reply-To"].strip() == "<patient-1@example.net>", msg["In-Reply-To"]
    assert "<patient-1@example.net>" in msg["References"].split(), msg["References"]
    assert OUR_MESSAGE_ID.fullmatch(msg["Message-ID"].strip()), msg["Message-ID"]
    reply_to = email.utils.parseaddr(msg["Reply-To"] or "")[1]
    assert TOKEN_ADDRESS.fullmatch(reply_to), f"Reply-To {msg['Reply-To']!r}"
    assert msg["Date"] and email.utils.parsedate_to_datetime(msg["Date"]) is not None
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    plain, html = plain_and_html(msg)
    assert norm(plain).startswith(norm(reply_text)) or norm(reply_text) in norm(plain), plain
    assert "María" in html and "15:00" in html, html
    for part in msg.walk():  # every text part declares a charset that decodes it
        if part.get_content_maintype() == "text":
            part.get_content()
    m = env.api.wait_delivery(cid, rid, "sent", timeout=20)
    assert m["channel"] == "email" and m["direction"] == "outbound", m
    time.sleep(1)
    assert len(sink.attempts_snapshot()) == 1, "the reply was submitted more than once"


def test_patient_answers_thread_back(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient()
    first_mid = f"<{uid('first.')}@example.net>"
    cid, rid, sm = start_and_reply(env, sink, addr, "Thursday at 3pm works.", message_id=first_mid)
    our_mid = sm.msg["Message-ID"].strip()
    token_addr = email.utils.parseaddr(sm.msg["Reply-To"])[1]
    assert TOKEN_ADDRESS.fullmatch(token_addr), token_addr

    # 1. a normal reply: In-Reply-To our Message-ID
    raw = build_mail(from_addr=addr, to=token_addr, subject="Re: Re: Appointment", in_reply_to=our_mid,
                     references=[first_mid, our_mid],
                     text="Perfect, thank you!\n\n" + mail.gmail_history(text="Thursday at 3pm works."))
    assert smtp_send(env.port, addr, token_addr, raw).ok
    det = wait_email_conversation(env.api, addr, 2, timeout=10)
    assert det["conversation"]["id"] == cid
    assert inbound_texts(det)[-1] == "Perfect, thank you!", inbound_texts(det)

    # 2. only the Reply-To token address, no In-Reply-To/References, another subject
    raw = build_mail(from_addr=addr, to=token_addr, subject="Parking?", text="Is there parking at the clinic?")
    assert smtp_send(env.port, addr, token_addr, raw).ok
    det = wait_email_conversation(env.api, addr, 3, timeout=10)
    assert det["conversation"]["id"] == cid, "the Reply-To token did not thread the mail"

    # 3. a brand-new mail with the same subject and no references: a new conversation
    raw = build_mail(from_addr=addr, subject="Appointment", text="A new question about a different appointment.")
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, raw).ok
    convs = wait_until(lambda: (lambda c: c if len(c) == 2 else None)(find_email_conversations(env.api, addr)),
                       10, 0.2, "a second conversation for the new mail")
    assert convs[0]["conversation"]["id"] == cid
    assert inbound_texts(convs[1]) == ["A new question about a different appointment."]
    assert len(inbound(convs[0])) == 3


def test_temporary_failures_are_retried_with_the_same_message_id(make_sink, mail_daemon):
    sink = make_sink(data_replies=["451 4.3.0 try later"] * 2)
    env = mail_daemon(sink=sink)
    addr = patient()
    det = patient_mail_in(env, addr)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "We got your message and will call you.")
    [sm] = sink.wait_messages(1, timeout=20)
    attempts = sink.attempts_snapshot()
    assert [a.answer.split()[0] for a in attempts] == ["451", "451", "250"], [a.answer for a in attempts]
    ids = {a.message_id for a in attempts}
    assert len(ids) == 1 and OUR_MESSAGE_ID.fullmatch(ids.pop().strip()), [a.message_id for a in attempts]
    env.api.wait_delivery(cid, rid, "sent", timeout=20)
    time.sleep(1.5)
    assert len(sink.snapshot()) == 1, "delivered more than once"


def test_permanent_failure_is_a_dead_letter(make_sink, mail_daemon):
    sink = make_sink(data_replies=["550 5.1.1 no such user"])
    env = mail_daemon(sink=sink)
    addr = patient("gone")
    det = patient_mail_in(env, addr)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "Your referral is ready.")
    m = env.api.wait_delivery(cid, rid, "failed", timeout=20)
    reason = m["failure_reason"]
    assert reason, m
    assert addr.lower() not in reason.lower() and addr.split("@")[0].lower() not in reason.lower(), \
        f"failure_reason carries the patient's address: {reason!r}"
    time.sleep(1.5)
    assert len(sink.attempts_snapshot()) == 1, "a 550 was retried"
    assert sink.snapshot() == []


def test_reply_text_cannot_inject_headers(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient()
    text = "Thanks for writing.\r\nBcc: evil@example.net\r\nX-Injected: yes\r\n\r\n<script>alert(1)</script> 5 < 6"
    cid, rid, sm = start_and_reply(env, sink, addr, text)
    msg = sm.msg
    assert msg["Bcc"] is None and msg["X-Injected"] is None, dict(msg.items())
    assert sm.rcpt_tos == [addr], sm.rcpt_tos
    assert not any("evil" in r for r in sm.rcpt_tos)
    head = sm.data.split(b"\r\n\r\n", 1)[0]
    assert b"evil@example.net" not in head, head
    plain, html = plain_and_html(msg)
    assert "Bcc: evil@example.net" in plain, "the text should stay text"
    assert "<script>" not in html, "agent text not escaped in the HTML part"
    env.api.wait_delivery(cid, rid, "sent", timeout=20)


def test_patient_subject_cannot_inject_headers(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient()
    # RFC 2047 words that decode to CR LF + a header
    subject = "=?utf-8?q?Appointment=0D=0ABcc:_evil@example.net?="
    name = "=?utf-8?q?Maria=0D=0ACc:_evil2@example.net?="
    raw = (f"From: {name} <{addr}>\r\nTo: {SUPPORT_ADDRESS}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{uid('inj.')}@example.net>\r\nDate: {email.utils.formatdate()}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n").encode()
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, raw).ok
    det = wait_email_conversation(env.api, addr, timeout=10)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "Answer to a tricky subject.")
    # Either the control characters never reach a header (sent, clean), or the reply is refused
    # (dead-lettered with a reason) -- never sent with an injected header.
    status = wait_until(lambda: (lambda m: m["delivery_status"] if m["delivery_status"] in ("sent", "failed")
                                 else None)(env.api.message(cid, rid)), 20, 0.1, "reply sent or failed")
    if status == "failed":
        m = env.api.message(cid, rid)
        assert m["failure_reason"] and addr not in m["failure_reason"], m
        time.sleep(0.5)
        assert sink.attempts_snapshot() == [], "a refused reply still reached the server"
        return
    [sm] = sink.wait_messages(1, timeout=5)
    msg = sm.msg
    assert msg["Bcc"] is None and msg["Cc"] is None, dict(msg.items())
    assert sm.rcpt_tos == [addr], sm.rcpt_tos
    head = sm.data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|cc):", head), head
    assert msg["Subject"].startswith("Re: "), msg["Subject"]


def test_bounce_marks_reply_failed(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient("bouncy")
    cid, rid, sm = start_and_reply(env, sink, addr, "Here are your instructions.", subject="Appointment")
    env.api.wait_delivery(cid, rid, "sent", timeout=20)
    our_mid = sm.msg["Message-ID"].strip()
    bounce_to = sm.mail_from if sm.mail_from.lower().endswith("@" + CLINIC_DOMAIN) else SUPPORT_ADDRESS
    dsn = build_dsn(original_message_id=our_mid, original_to=addr, to=bounce_to, status="5.1.1",
                    diagnostic="smtp; 550 5.1.1 User unknown")
    res = smtp_send(env.port, "", bounce_to, dsn)
    assert res.ok, res
    m = env.api.wait_delivery(cid, rid, "failed", timeout=15)
    assert "5.1.1" in (m["failure_reason"] or ""), m
    assert find_email_conversations(env.api, "mailer-daemon@mx.example.net") == []
    assert len(find_email_conversations(env.api)) == 1, "the bounce opened a conversation"
    time.sleep(1)
    assert len(sink.attempts_snapshot()) == 1, "the daemon answered the bounce"


def test_auto_reply_stored_but_never_answered(make_sink, mail_daemon):
    sink = make_sink()
    env = mail_daemon(sink=sink)
    addr = patient("ooo")
    raw = build_mail(from_addr=addr, subject="Automatic reply: Appointment",
                     text="I am out of the office until Monday with limited access to email. "
                          "If this is an emergency, call 911 - chest pain, can't breathe.",
                     headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All",
                              "Precedence": "auto_reply"})
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, raw).ok
    det = wait_email_conversation(env.api, addr, timeout=10)
    assert len(inbound(det)) == 1
    # Triaged and routed like any message (its words say emergency) ...
    cid = det["conversation"]["id"]
    msg = wait_until(lambda: (lambda m: m if m.get("triage") else None)(inbound(env.api.conversation(cid))[0]),
                     15, 0.2, "the auto-reply's triage")
    assert msg["email"]["auto_reply"] == "auto_submitted", msg["email"]
    assert msg["triage"]["urgency"] == "emergency", msg["triage"]
    # ... but nothing answers a machine: no safety reply, no rule reply.
    time.sleep(3)
    assert sink.attempts_snapshot() == [], "an auto-reply triggered outbound mail"
    assert [m for m in env.api.conversation(cid)["messages"] if m["direction"] == "outbound"] == []


def test_submission_over_starttls_with_auth(make_sink, mail_daemon, mail_cert):
    cert, key = mail_cert
    sink = make_sink(tls=(cert, key), require_starttls=True, auth=(SINK_USER, SINK_PASSWORD))
    env = mail_daemon(sink=sink, submission_tls="starttls", submission_ca_file=str(cert),
                      submission_username=SINK_USER, submission_password=SINK_PASSWORD)
    addr = patient()
    cid, rid, sm = start_and_reply(env, sink, addr, "Sent over STARTTLS with AUTH.")
    assert sm.tls, "submitted without TLS"
    assert sm.auth == SINK_USER, f"not authenticated: {sm.auth!r}"
    assert sink.auth_failures == 0
    env.api.wait_delivery(cid, rid, "sent", timeout=20)
    assert SINK_PASSWORD not in env.d.log_text()


def test_submission_over_smtps_with_auth(make_sink, mail_daemon, mail_cert):
    cert, key = mail_cert
    # aiosmtpd only counts STARTTLS as TLS for its auth_require_tls; the connection is TLS here.
    sink = make_sink(tls=(cert, key), implicit_tls=True, auth=(SINK_USER, SINK_PASSWORD), auth_require_tls=False)
    env = mail_daemon(sink=sink, submission_url=sink.url, submission_ca_file=str(cert),
                      submission_username=SINK_USER, submission_password=SINK_PASSWORD)
    addr = patient()
    cid, rid, sm = start_and_reply(env, sink, addr, "Sent over SMTPS with AUTH.")
    assert sm.tls and sm.auth == SINK_USER, (sm.tls, sm.auth)
    env.api.wait_delivery(cid, rid, "sent", timeout=20)


def test_submission_credentials_refused_are_retried_not_dead_lettered(make_sink, mail_daemon):
    """A 535 (or 530) is our configuration, not the message: the reply stays queued and is retried;
    the log names the keys to check."""
    sink = make_sink(auth=(SINK_USER, SINK_PASSWORD), auth_require_tls=False)
    env = mail_daemon(sink=sink, submission_username=SINK_USER, submission_password="not-the-password-5521")
    addr = patient()
    det = patient_mail_in(env, addr)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "Waiting for the right password.")
    wait_until(lambda: sink.auth_failures >= 2, 30, 0.2, "two submission attempts refused")
    assert env.api.message(cid, rid)["delivery_status"] == "queued"
    log = env.d.log_text()
    assert "email.submission_username" in log and "not-the-password-5521" not in log


def test_submission_refuses_cleartext_when_tls_required(make_sink, mail_daemon):
    sink = make_sink()  # offers no STARTTLS
    env = mail_daemon(sink=sink, submission_tls="starttls")
    addr = patient()
    det = patient_mail_in(env, addr)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "This must not travel in clear text.")
    time.sleep(4)
    assert sink.attempts_snapshot() == [], "the reply was submitted without TLS"
    assert env.api.message(cid, rid)["delivery_status"] in ("queued", "failed")


def test_submission_untrusted_certificate_not_used(make_sink, mail_daemon, mail_cert):
    cert, key = mail_cert
    sink = make_sink(tls=(cert, key), require_starttls=True)
    env = mail_daemon(sink=sink, submission_tls="starttls")  # no submission_ca_file: self-signed is untrusted
    addr = patient()
    det = patient_mail_in(env, addr)
    cid = det["conversation"]["id"]
    env.api.claim(cid)
    rid = env.api.reply(cid, "Not to an unverified server.")
    time.sleep(4)
    assert sink.attempts_snapshot() == [], "submitted to a server whose certificate was not verified"
    assert env.api.message(cid, rid)["delivery_status"] in ("queued", "failed")


# ---------------------------------------------------------------------------------------------
# PHI never reaches the logs


@pytest.mark.slow
@pytest.mark.parametrize("level", ["info", "trace"])
def test_no_phi_in_logs_email(make_sink, mail_daemon, make_dovecot, level):
    from test_end_to_end import phi_findings as _pf

    def phi_findings(text, extra=()):
        return [ln[:400] + ("…" if len(ln) > 400 else "") for ln in _pf(text, extra)]

    sink = make_sink(data_replies=["451 4.3.0 try later"])
    dv = make_dovecot()
    env = mail_daemon(sink=sink, dovecot=dv, log_level=level, max_message_bytes=65536)
    d, api = env.d, env.api
    addr = "zq.patient@example.org"
    extra = ("Zebulon", "Quixote", "zq.patient", "ZQX-4471", "Rash follow-up", "ointment", "imap.zebulon",
             mail.IMAP_PASSWORD)
    subject = "Rash follow-up ZQX-4471"

    # SMTP in (with a quoted history), a duplicate, a relay attempt and an oversized mail carrying PHI
    raw = build_mail(from_addr=addr, from_name="Zebulon Quixote", subject=subject,
                     text="my rash is spreading ZQX-4471, the ointment does nothing\n"
                          + mail.outlook_history(to=f"Zebulon Quixote <{addr}>"),
                     message_id="<zq-1@example.org>")
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, raw).ok
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, raw).ok
    res = smtp_send(env.port, addr, "zebulon.quixote@other.example", raw)
    assert res.code == 550, res
    big = build_mail(from_addr=addr, subject=subject, text="Zebulon rash spreading\n" * 5000)
    assert smtp_send(env.port, addr, SUPPORT_ADDRESS, big).code == 552
    cid = wait_email_conversation(api, addr, timeout=10)["conversation"]["id"]
    # IMAP in
    dv.deliver(build_mail(from_addr=addr, from_name="Zebulon Quixote", subject=subject,
                          text="Zebulon again: the rash is spreading to my arm", message_id="<imap.zebulon@example.org>"))
    # A fresh mail (no reference to ours): its own conversation of the same contact.
    wait_until(lambda: len(find_email_conversations(api, addr)) == 2, 15, 0.2, "the IMAP mail's conversation")
    # reply (one 451, then sent), a bounce for it, a bad-credentials attempt on the listener
    api.claim(cid)
    rid = api.reply(cid, "Zebulon, keep using the rash ointment (ZQX-4471) and call us.")
    [sm] = sink.wait_messages(1, timeout=20)
    api.wait_delivery(cid, rid, "sent", timeout=20)
    dsn = build_dsn(original_message_id=sm.msg["Message-ID"].strip(), original_to=addr,
                    original_subject="Re: " + subject, diagnostic=f"smtp; 550 5.1.1 <{addr}>: Recipient unknown")
    assert smtp_send(env.port, "", SUPPORT_ADDRESS, dsn).ok
    api.wait_delivery(cid, rid, "failed", timeout=15)
    api.conversation(cid)
    d.stop()
    log = d.log_text()
    assert "email" in log.lower() or "smtp" in log.lower(), "the email path logged nothing at all"
    found = phi_findings(log, extra=extra + (api.token,))
    assert not found, "PHI or secrets in the daemon's log:\n" + "\n".join(found)
