"""Email in over SMTP: the daemon's own listener (``email.smtp_port``) driven by smtplib, swaks and a raw
socket client. Greeting and EHLO, storage and the agent API view, quoted-history separation, dedupe on
Message-ID, relay refusal (open-relay vectors), size limits, SMTP smuggling, pipelining, STARTTLS
command injection, command sequencing, SMTPUTF8/8BITMIME, attachments, STARTTLS/require_tls/AUTH,
limits (recipients, connections, errors, idle), SIGTERM, emergency triage."""

from __future__ import annotations

import base64
import re
import signal
import time

import pytest

import mail_harness as mail
from mail_harness import (CLINIC_DOMAIN, LISTENER_PASSWORD, LISTENER_USER, SMTP_HOSTNAME, SUPPORT_ADDRESS,
                          RawSMTP, build_mail, ehlo_keywords, find_email_conversations, inbound, inbound_texts,
                          smtp_send, wait_email_conversation)
from switchboard_harness import uid, wait_until

QUEUED = re.compile(r"^2\.0\.0 Ok: queued as q_\S+$")


def norm(text: str) -> str:
    """Whitespace-insensitive form (line ends, wrapping) for comparing stored text."""
    return " ".join(text.split())


def patient(prefix: str = "patient") -> str:
    return f"{prefix}.{uid()}@example.net"


def assert_queued(res: mail.SendResult) -> None:
    assert res.ok, f"not accepted: {res}"
    assert QUEUED.match(res.text), f"250 text is not '2.0.0 Ok: queued as q_...': {res.text!r}"


def no_email_conversations(api) -> bool:
    return find_email_conversations(api) == []


def tls_env(mail_daemon, mail_cert, **kw):
    cert, key = mail_cert
    return mail_daemon(tls_certificate_file=str(cert), tls_key_file=str(key), **kw)


def need_swaks_tls():
    problem = mail.swaks_tls_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


# ---------------------------------------------------------------------------------------------
# greeting and EHLO


def test_greeting_and_ehlo_capabilities(mail_daemon):
    env = mail_daemon(max_message_bytes=1048576)
    with RawSMTP(env.port) as c:
        code, lines = c.greeting
        assert code == 220 and lines[0].startswith(f"{SMTP_HOSTNAME} ESMTP"), c.greeting
        code, lines = c.ehlo("client.example.net")
        assert code == 250 and lines[0].split()[0] == SMTP_HOSTNAME, (code, lines)
        kws = ehlo_keywords(lines)
        for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
            assert k in kws, f"EHLO lacks {k}: {lines}"
        assert kws.get("SIZE") == "1048576", f"SIZE must announce max_message_bytes: {lines}"
        assert "STARTTLS" not in kws, f"STARTTLS offered without a certificate: {lines}"
        assert "AUTH" not in kws, f"AUTH offered without auth config / TLS: {lines}"
        assert c.cmd("QUIT")[0] == 221


def test_ehlo_starttls_then_auth_only_after_tls(mail_daemon, mail_cert):
    cert, _ = mail_cert
    env = tls_env(mail_daemon, mail_cert, auth_username=LISTENER_USER, auth_password=LISTENER_PASSWORD)
    with RawSMTP(env.port) as c:
        kws = ehlo_keywords(c.ehlo()[1])
        assert "STARTTLS" in kws, kws
        assert "AUTH" not in kws, f"AUTH advertised before STARTTLS: {kws}"
        token = base64.b64encode(f"\0{LISTENER_USER}\0{LISTENER_PASSWORD}".encode()).decode()
        r = c.cmd(f"AUTH PLAIN {token}")
        assert r[0] in (538, 503), f"AUTH before TLS must be refused (538 5.7.11, or 503 as not offered): {r}"
        if r[0] == 538:
            assert r[1][0].startswith("5.7.11"), r
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls(cafile=cert)  # the configured certificate, verified for 127.0.0.1
        kws = ehlo_keywords(c.ehlo()[1])
        assert "STARTTLS" not in kws, f"STARTTLS offered again inside TLS: {kws}"
        assert "AUTH" in kws and {"PLAIN", "LOGIN"} <= set(kws["AUTH"].upper().split()), kws
        for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE"):
            assert k in kws, kws
        assert c.cmd("STARTTLS")[0] in (503, 554), "a second STARTTLS must be refused"


# ---------------------------------------------------------------------------------------------
# storage and what the agents see


def test_message_stored_new_text_only(mail_daemon):
    env = mail_daemon()
    addr = patient("maria")
    new_text = "Hi, could I move my appointment to Thursday morning?\n\nThanks,\nMaria"
    text = new_text + "\n" + mail.outlook_history(to=f"Maria Lopez <{addr}>",
                                                 text="Your appointment is on Tuesday at 9:30 with Dr. Okafor.")
    html = ("<html><body><p>Hi, could I move my appointment to Thursday morning?</p><p>Thanks,<br>Maria</p>"
            "<hr><p><b>From:</b> Clinic Support<br><b>Sent:</b> Monday</p>"
            "<p>Your appointment is on Tuesday at 9:30 with Dr. Okafor.</p></body></html>")
    raw = build_mail(from_addr=addr, from_name="Maria Lopez", subject="RE: Appointment", text=text, html=html,
                     message_id=f"<{uid('m.')}@example.net>")
    res = smtp_send(env.port, addr, [SUPPORT_ADDRESS], raw)
    assert_queued(res)
    det = wait_email_conversation(env.api, addr, timeout=10)
    assert det["conversation"]["channel"] == "email"
    msgs = inbound(det)
    assert len(msgs) == 1, det["messages"]
    m = msgs[0]
    assert m["direction"] == "inbound" and m["channel"] == "email", m
    assert norm(m["text"]) == norm(new_text), f"stored text is not the new text: {m['text']!r}"
    assert "Okafor" not in m["text"] and "Sent:" not in m["text"], "quoted history leaked into the text"
    assert {"kind": "email", "value": addr} in det["contact"]["identities"], det["contact"]
    assert det["contact"]["name"] == "Maria Lopez", det["contact"]


QUOTE_STYLES = {
    "gmail-en": lambda: mail.gmail_history("en"),
    "gmail-es": lambda: mail.gmail_history("es"),
    "outlook-en": lambda: mail.outlook_history("en"),
    "outlook-es": lambda: mail.outlook_history("es"),
    "original-message": lambda: ("\n-----Original Message-----\nFrom: Clinic Support <support@clinic.example>\n"
                                 "Sent: Monday, November 23, 2026 9:14 AM\nSubject: Appointment\n\n"
                                 "Your appointment is confirmed for Tuesday at 9:30.\n"),
}


@pytest.mark.parametrize("style", sorted(QUOTE_STYLES))
def test_quoted_history_styles_are_separated(mail_daemon, style):
    env = mail_daemon()
    addr = patient()
    spanish = style.endswith("-es")
    new_text = ("Sí, el martes me viene bien. ¿Tengo que llevar los análisis?" if spanish
                else "Yes, Tuesday works. Do I need to bring the lab results?")
    raw = build_mail(from_addr=addr, subject="Re: Appointment", text=new_text + "\n" + QUOTE_STYLES[style](),
                     charset="iso-8859-1" if spanish else "utf-8", cte="quoted-printable")
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    det = wait_email_conversation(env.api, addr, timeout=10)
    [text] = inbound_texts(det)
    assert norm(text) == norm(new_text), f"{style}: stored {text!r}"


def test_same_message_id_stored_once(mail_daemon):
    env = mail_daemon()
    addr = patient()
    mid = f"<{uid('dup.')}@example.net>"
    raw = build_mail(from_addr=addr, subject="Refill", text="Please refill my lisinopril.", message_id=mid)
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))  # a retrying MTA
    # one transaction for two of our addresses: still one message
    res = smtp_send(env.port, addr, [SUPPORT_ADDRESS, f"billing@{CLINIC_DOMAIN}"], raw)
    assert [r[1] for r in res.replies if r[0] == "rcpt"] == [250, 250], res
    assert_queued(res)
    det = wait_email_conversation(env.api, addr, timeout=10)
    time.sleep(0.5)
    convs = find_email_conversations(env.api, addr)
    assert len(convs) == 1, [c["conversation"]["id"] for c in convs]
    assert inbound_texts(convs[0]) == ["Please refill my lisinopril."], convs[0]["messages"]
    assert det["conversation"]["id"] == convs[0]["conversation"]["id"]


def test_attachments_listed(mail_daemon):
    env = mail_daemon()
    addr = patient()
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" + bytes(range(256)) * 20
           + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
    jpg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(1500) + b"\xff\xd9"
    page = b"<html><script>alert(1)</script></html>"
    raw = build_mail(from_addr=addr, subject="Lab results", text="Attached are my lab results and a photo.",
                     attachments=[("lab-results.pdf", "application/pdf", pdf), ("rash.jpg", "image/jpeg", jpg),
                                  ("page.html", "text/html", page)])
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    det = wait_email_conversation(env.api, addr, timeout=10)
    [m] = inbound(det)
    assert norm(m["text"]) == "Attached are my lab results and a photo.", m["text"]
    got = {a["filename"]: a for a in m["attachments"]}
    assert set(got) == {"lab-results.pdf", "rash.jpg", "page.html"}, m["attachments"]

    # Downloads: the same bytes, always as an attachment, never rendered by the browser.
    import requests
    auth = {"Authorization": f"Bearer {env.api.token}"}
    for name, body, served_as in [("lab-results.pdf", pdf, "application/pdf"), ("rash.jpg", jpg, "image/jpeg"),
                                  ("page.html", page, "application/octet-stream")]:
        r = requests.get(env.d.url + got[name]["download_url"], headers=auth, timeout=10)
        assert r.status_code == 200 and r.content == body, (name, r.status_code)
        assert r.headers["Content-Type"].split(";")[0] == served_as, (name, r.headers)
        assert r.headers["Content-Disposition"].startswith("attachment"), r.headers
        assert r.headers["X-Content-Type-Options"] == "nosniff", r.headers
        assert "sandbox" in r.headers.get("Content-Security-Policy", ""), r.headers
    missing = got["rash.jpg"]["download_url"].rsplit("/", 1)[0] + "/999999"
    assert requests.get(env.d.url + missing, headers=auth, timeout=10).status_code == 404
    assert requests.get(env.d.url + got["rash.jpg"]["download_url"], timeout=10).status_code == 401
    assert got["lab-results.pdf"]["content_type"] == "application/pdf"
    assert got["lab-results.pdf"]["size_bytes"] == len(pdf), got["lab-results.pdf"]
    assert got["rash.jpg"]["content_type"] == "image/jpeg"
    assert got["rash.jpg"]["size_bytes"] == len(jpg), got["rash.jpg"]


def test_utf8_headers_and_8bit_body_decoded(mail_daemon):
    env = mail_daemon()
    addr = patient("jose")
    subject = "Cita médica — mañana ✓"
    body = "Buenos días, ¿puedo cambiar mi cita al jueves? Gracias ✓ — José"
    raw = build_mail(from_addr=addr, from_name="José Núñez", subject=subject, text=body, charset="utf-8",
                     cte="8bit", utf8_headers=True)
    assert b"Jos\xc3\xa9 N\xc3\xba\xc3\xb1ez" in raw and b"=?" not in raw.split(b"\r\n\r\n")[0]
    res = smtp_send(env.port, addr, SUPPORT_ADDRESS, raw, mail_options=["BODY=8BITMIME", "SMTPUTF8"])
    assert_queued(res)
    det = wait_email_conversation(env.api, addr, timeout=10)
    assert len(inbound(det)) == 1 and norm(inbound_texts(det)[0]) == norm(body), inbound_texts(det)
    assert det["contact"]["name"] == "José Núñez", det["contact"]
    mid = inbound(det)[0]["id"]
    rows = mail.db_rows(env.d, "SELECT subject FROM email_messages WHERE message_id = ?", (mid,))
    assert rows == [(subject,)], rows

    # the same kind of content the 7-bit way: RFC 2047 header words and ISO-8859-1 quoted-printable
    addr2 = patient("lucia")
    body2 = "Hola, soy Lucía. ¿Podrían enviarme la receta? Muchas gracias, señorita."
    raw2 = build_mail(from_addr=addr2, from_name="Lucía Peña", subject="Receta médica", text=body2,
                      charset="iso-8859-1", cte="quoted-printable")
    assert b"=?" in raw2 and b"=ED" in raw2
    assert_queued(smtp_send(env.port, addr2, SUPPORT_ADDRESS, raw2))
    det2 = wait_email_conversation(env.api, addr2, timeout=10)
    assert norm(inbound_texts(det2)[0]) == norm(body2), inbound_texts(det2)
    assert det2["contact"]["name"] == "Lucía Peña", det2["contact"]
    rows = mail.db_rows(env.d, "SELECT subject FROM email_messages WHERE message_id = ?", (inbound(det2)[0]["id"],))
    assert rows == [("Receta médica",)], rows


def test_utf8_address_needs_smtputf8(mail_daemon):
    env = mail_daemon()
    local = f"josé.{uid()}"
    addr = f"{local}@example.net"
    with RawSMTP(env.port) as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{addr}>".encode())
        assert r[0] == 553, f"UTF-8 sender without SMTPUTF8: {r}"
        r = c.cmd("MAIL FROM:<ascii@example.net>")
        assert r[0] == 250, r
        r = c.cmd(f"RCPT TO:<sópórte@{CLINIC_DOMAIN}>".encode())
        assert r[0] == 553, f"UTF-8 recipient without SMTPUTF8: {r}"
    raw = build_mail(from_addr=addr, subject="Hola", text="Mensaje desde una dirección UTF-8.", utf8_headers=True,
                     cte="8bit")
    res = smtp_send(env.port, addr, SUPPORT_ADDRESS, raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert_queued(res)
    det = wait_email_conversation(env.api, addr, timeout=10)
    assert inbound_texts(det) == ["Mensaje desde una dirección UTF-8."]


def test_emergency_email_gets_emergency_priority(mail_daemon):
    env = mail_daemon()
    addr = patient()
    raw = build_mail(from_addr=addr, subject="Help",
                     text="My father has crushing chest pain and can't breathe. What do we do?")
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    cid = wait_email_conversation(env.api, addr, timeout=10)["conversation"]["id"]
    wait_until(lambda: env.api.conversation(cid)["conversation"]["priority"] == "emergency", 10, 0.2,
               "conversation priority emergency")


# ---------------------------------------------------------------------------------------------
# relay refusal


@pytest.mark.parametrize("rcpt,codes", [
    ("<user@other.example>", (550,)),
    ("<@clinic.example:user@other.example>", (550,)),                      # source route: the final address counts
    ("<@relay.other.example,@clinic.example:user@other.example>", (550,)),
    ("<\"user@other.example\">", (501, 550)),                             # quoted local part, no domain
    ("<user@other.example@clinic.example>", (501,)),                      # two @: bad syntax
    ("<user@clinic.example.other.example>", (550,)),                      # our domain as a prefix only
    ("<user@other.example.>", (501, 550)),
])
def test_relay_denied(mail_daemon, rcpt, codes):
    env = mail_daemon()
    with RawSMTP(env.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<probe@example.org>")[0] == 250
        r = c.cmd(f"RCPT TO:{rcpt}")
        assert r[0] in codes, f"RCPT TO:{rcpt} -> {r}, expected {codes}"
        if r[0] == 550:
            assert r[1][0].startswith("5.7.1"), f"relay refusal should be 550 5.7.1: {r}"
        r = c.cmd("DATA")
        assert r[0] in (503, 554), f"DATA without an accepted recipient -> {r}"
        if r[0] == 354:  # pragma: no cover - only on failure: finish the transaction to see what happens
            c.send(b"Subject: relay\r\n\r\nrelayed\r\n.\r\n")
            c.reply()
    assert no_email_conversations(env.api)


def test_percent_hack_for_our_domain_is_ours(mail_daemon):
    env = mail_daemon()
    addr = patient()
    raw = build_mail(from_addr=addr, to=f"user%other.example@{CLINIC_DOMAIN}", subject="pct",
                     text="percent-hack address at our domain")
    assert_queued(smtp_send(env.port, addr, f"user%other.example@{CLINIC_DOMAIN}", raw))
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["percent-hack address at our domain"]


def test_accepted_addresses_only(mail_daemon):
    env = mail_daemon(accepted_domains="", accepted_addresses="intake@frontdesk.example, Records@clinic.example")
    addr = patient()
    with RawSMTP(env.port) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        assert c.cmd("RCPT TO:<intake@frontdesk.example>")[0] == 250
        assert c.cmd("RCPT TO:<records@CLINIC.example>")[0] == 250, "address match must be case-insensitive"
        assert c.cmd("RCPT TO:<other@frontdesk.example>")[0] == 550
        assert c.cmd(f"RCPT TO:<support@{CLINIC_DOMAIN}>")[0] == 550
    raw = build_mail(from_addr=addr, to="intake@frontdesk.example", subject="x", text="to the intake address")
    assert_queued(smtp_send(env.port, addr, "intake@frontdesk.example", raw))
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["to the intake address"]


# ---------------------------------------------------------------------------------------------
# size limits


def test_oversized_message_552_and_session_still_usable(mail_daemon):
    env = mail_daemon(max_message_bytes=65536)
    addr = patient()
    big = build_mail(from_addr=addr, subject="big", text=("the quick brown fox jumps over the lazy dog\n" * 2500))
    assert len(big) > 100_000
    small = build_mail(from_addr=addr, subject="small", text="small one after the big one")
    with RawSMTP(env.port, timeout=20) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(big + b"\r\n.\r\n")
        r = c.reply()
        assert r is not None and r[0] == 552 and r[1][0].startswith("5.3.4"), f"oversized DATA -> {r}"
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250, "session not usable after 552"
        assert c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(small + b"\r\n.\r\n")
        r = c.reply()
        assert r[0] == 250 and QUEUED.match(r[1][0]), r
    det = wait_email_conversation(env.api, addr, timeout=10)
    time.sleep(0.3)
    assert inbound_texts(find_email_conversations(env.api, addr)[0]) == ["small one after the big one"]
    assert len(find_email_conversations(env.api, addr)) == 1, det


def test_mail_size_parameter_over_limit(mail_daemon):
    env = mail_daemon(max_message_bytes=65536)
    with RawSMTP(env.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<x@example.net> SIZE=70000")
        assert r[0] == 552 and r[1][0].startswith("5.3.4"), r
        r = c.cmd("MAIL FROM:<x@example.net> SIZE=100000000000")
        assert r[0] == 552, r
        r = c.cmd("MAIL FROM:<x@example.net> SIZE=1000")
        assert r[0] == 250, f"a SIZE within the limit must be accepted: {r}"


# ---------------------------------------------------------------------------------------------
# SMTP smuggling, pipelining, STARTTLS injection


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF"])
def test_smtp_smuggling_is_one_message(mail_daemon, fake_end):
    env = mail_daemon()
    addr = patient()
    smuggler = f"smuggler.{uid()}@example.org"
    head = (f"From: {addr}\r\nTo: {SUPPORT_ADDRESS}\r\nSubject: carrier\r\n"
            f"Message-ID: <{uid('c.')}@example.net>\r\n\r\n").encode()
    smuggled = (f"MAIL FROM:<{smuggler}>\r\nRCPT TO:<{SUPPORT_ADDRESS}>\r\nDATA\r\n"
                f"From: {smuggler}\r\nTo: {SUPPORT_ADDRESS}\r\nSubject: smuggled\r\n"
                f"Message-ID: <{uid('s.')}@example.org>\r\n\r\nsmuggled line zebra\r\n").encode()
    with RawSMTP(env.port) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(head + b"carrier line one" + fake_end + smuggled + b"\r\n.\r\n")
        r = c.reply()
        assert r is not None and r[0] == 250, f"expected one 250 for the whole DATA, got {r}"
        assert c.no_reply_within(1.5), f"extra replies after the message: {c.buf!r}"
        assert c.cmd("QUIT")[0] == 221
    det = wait_email_conversation(env.api, addr, timeout=10)
    time.sleep(0.3)
    convs = find_email_conversations(env.api)
    assert len(convs) == 1, [(mail.email_identity(c), inbound_texts(c)) for c in convs]
    assert find_email_conversations(env.api, smuggler) == []
    [text] = inbound_texts(det)
    assert "carrier line one" in text and "smuggled line zebra" in text, text
    assert "RCPT TO:" in text, f"the smuggled commands should be part of the text: {text!r}"


def test_pipelined_commands_answered_in_order(mail_daemon):
    env = mail_daemon()
    addr = patient()
    with RawSMTP(env.port) as c:
        c.send(f"EHLO pipe.example.net\r\nMAIL FROM:<{addr}>\r\nRCPT TO:<{SUPPORT_ADDRESS}>\r\n"
               f"RCPT TO:<someone@other.example>\r\nDATA\r\n")
        got = [c.reply() for _ in range(5)]
        assert [g[0] for g in got] == [250, 250, 250, 550, 354], got
        assert "PIPELINING" in ehlo_keywords(got[0][1])
        c.send(build_mail(from_addr=addr, subject="pipelined", text="pipelined message") + b"\r\n.\r\nQUIT\r\n")
        r1, r2 = c.reply(), c.reply()
        assert r1[0] == 250 and r2[0] == 221, (r1, r2)
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["pipelined message"]


def test_starttls_pipelined_command_is_discarded(mail_daemon, mail_cert):
    cert, _ = mail_cert
    env = tls_env(mail_daemon, mail_cert)
    injected = f"injected.{uid()}@example.org"
    addr = patient()
    with RawSMTP(env.port) as c:
        c.ehlo()
        c.send(f"STARTTLS\r\nMAIL FROM:<{injected}>\r\n")
        r = c.reply()
        assert r[0] == 220, r
        assert c.buf == b"", f"server answered the pipelined MAIL before TLS: {c.buf!r}"
        c.starttls(cafile=cert)
        assert c.no_reply_within(1.0), f"the pre-TLS MAIL was answered inside TLS: {c.buf!r}"
        r = c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")
        assert r[0] == 503, f"the injected MAIL was acted upon (RCPT after it -> {r})"
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert r[0] == 503, f"after STARTTLS a fresh EHLO is required: {r}"
        kws = ehlo_keywords(c.ehlo()[1])
        assert "STARTTLS" not in kws
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(build_mail(from_addr=addr, subject="tls", text="after a clean STARTTLS") + b"\r\n.\r\n")
        assert c.reply()[0] == 250
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["after a clean STARTTLS"]
    assert find_email_conversations(env.api, injected) == []


# ---------------------------------------------------------------------------------------------
# command sequencing


def test_bad_command_sequences(mail_daemon):
    env = mail_daemon()
    addr = patient()
    with RawSMTP(env.port) as c:
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert r[0] == 503, f"MAIL before EHLO: {r}"
        c.ehlo()
        r = c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")
        assert r[0] == 503, f"RCPT before MAIL: {r}"
        r = c.cmd("DATA")
        assert r[0] == 503, f"DATA before MAIL: {r}"
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        r = c.cmd("DATA")
        assert r[0] == 503, f"DATA before RCPT: {r}"
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert r[0] == 503, f"nested MAIL: {r}"
        r = c.cmd("FROBNICATE now")
        assert r[0] in (500, 502), f"unknown command: {r}"
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd(f"MAIL FROM:<{addr}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{SUPPORT_ADDRESS}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(build_mail(from_addr=addr, subject="seq", text="after the bad sequence") + b"\r\n.\r\n")
        assert c.reply()[0] == 250
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["after the bad sequence"]


def test_too_many_errors_421_and_close(mail_daemon):
    env = mail_daemon()
    with RawSMTP(env.port, timeout=15) as c:
        c.ehlo()
        codes = []
        for i in range(12):
            r = c.cmd(f"XYZZY{i}")
            if r is None:
                codes.append(None)
                break
            codes.append(r[0])
            if r[0] == 421:
                break
        assert 421 in codes, f"no 421 after 12 unknown commands: {codes}"
        assert all(x in (500, 502) for x in codes[:-1]), codes
        assert c.closed_within(5), "connection not closed after 421"


def test_max_recipients(mail_daemon):
    env = mail_daemon(max_recipients=3)
    with RawSMTP(env.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<p@example.net>")[0] == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@{CLINIC_DOMAIN}>")[0] == 250
        r = c.cmd(f"RCPT TO:<r9@{CLINIC_DOMAIN}>")
        assert r[0] == 452 and r[1][0].startswith("4.5.3"), r


def test_max_connections(mail_daemon):
    env = mail_daemon(max_connections=2)
    a, b = RawSMTP(env.port), RawSMTP(env.port)
    try:
        assert a.greeting[0] == 220 and b.greeting[0] == 220
        c = RawSMTP(env.port, read_greeting=False)
        r = c.reply()
        assert r is not None and r[0] == 421, f"third connection over max_connections=2: {r}"
        assert c.closed_within(5)
        c.close()
        a.cmd("QUIT")
        a.close()
        # a slot is free again

        def greets():
            with RawSMTP(env.port) as n:
                return n.greeting is not None and n.greeting[0] == 220
        wait_until(greets, 5, 0.1, "a new session after one closed")
    finally:
        a.close()
        b.close()


def test_idle_session_times_out(mail_daemon):
    env = mail_daemon(idle_timeout_seconds=2)
    with RawSMTP(env.port, timeout=10) as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.reply(timeout=10)
        assert r is None or r[0] == 421, f"idle timeout should say 421 (or just close): {r}"
        assert c.closed_within(5), "idle session not closed"
        assert 1.5 <= time.monotonic() - t0 <= 8, time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# TLS and AUTH


def test_swaks_starttls(mail_daemon, mail_cert):
    need_swaks_tls()
    env = tls_env(mail_daemon, mail_cert)
    addr = patient()
    rc, out = mail.swaks("--server", f"127.0.0.1:{env.port}", "--tls", "--ehlo", "swaks.example.net",
                         "--from", addr, "--to", SUPPORT_ADDRESS, "--header", "Subject: swaks over TLS",
                         "--body", "sent by swaks over STARTTLS", "--timeout", "15")
    assert rc == 0, out
    assert "STARTTLS" in out and re.search(r"<~\s+250 2\.0\.0 Ok: queued as q_", out), out
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["sent by swaks over STARTTLS"]


def test_require_tls(mail_daemon, mail_cert):
    need_swaks_tls()
    env = tls_env(mail_daemon, mail_cert, require_tls=True)
    addr = patient()
    with RawSMTP(env.port) as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert r[0] == 530, f"MAIL without STARTTLS under require_tls: {r}"
    rc, out = mail.swaks("--server", f"127.0.0.1:{env.port}", "--from", addr, "--to", SUPPORT_ADDRESS,
                         "--body", "plain attempt", "--timeout", "15")
    assert rc == 23, f"swaks without TLS should fail at MAIL (exit 23): {rc}\n{out}"
    rc, out = mail.swaks("--server", f"127.0.0.1:{env.port}", "--tls", "--from", addr, "--to", SUPPORT_ADDRESS,
                         "--header", "Subject: tls", "--body", "required TLS used", "--timeout", "15")
    assert rc == 0, out
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=10)) == ["required TLS used"]


def test_auth_after_starttls(mail_daemon, mail_cert):
    need_swaks_tls()
    cert, _ = mail_cert
    env = tls_env(mail_daemon, mail_cert, auth_username=LISTENER_USER, auth_password=LISTENER_PASSWORD)
    addr = patient()
    base = ["--server", f"127.0.0.1:{env.port}", "--tls", "--from", addr, "--to", SUPPORT_ADDRESS, "--timeout", "15"]
    # wrong password
    rc, out = mail.swaks(*base, "--auth", "PLAIN", "--auth-user", LISTENER_USER, "--auth-password", "wrong-pw",
                         "--body", "wrong password")
    assert rc == 28 and re.search(r"<~\*\s+535", out), f"wrong password: exit {rc}\n{out}"
    # MAIL without AUTH (inside TLS)
    res = smtp_send(env.port, addr, SUPPORT_ADDRESS, build_mail(from_addr=addr, text="no auth"), starttls=True,
                    cafile=cert)
    assert res.stage == "mail" and res.code == 530, res
    # right credentials, PLAIN and LOGIN
    rc, out = mail.swaks(*base, "--auth", "PLAIN", "--auth-user", LISTENER_USER, "--auth-password",
                         LISTENER_PASSWORD, "--header", "Subject: auth plain", "--body", "authenticated with PLAIN")
    assert rc == 0 and re.search(r"<~\s+235", out), f"AUTH PLAIN: exit {rc}\n{out}"
    rc, out = mail.swaks(*base, "--auth", "LOGIN", "--auth-user", LISTENER_USER, "--auth-password",
                         LISTENER_PASSWORD, "--header", "Subject: auth login", "--body", "authenticated with LOGIN")
    assert rc == 0 and re.search(r"<~\s+235", out), f"AUTH LOGIN: exit {rc}\n{out}"
    # Two fresh mails (no In-Reply-To, no reply token): two conversations of the one contact.
    convs = wait_until(lambda: (lambda cs: cs if sum(len(inbound(c)) for c in cs) >= 2 else None)(
        find_email_conversations(env.api, addr)), 10, 0.1, "both authenticated mails")
    texts = sorted(t for c in convs for t in inbound_texts(c))
    assert texts == ["authenticated with LOGIN", "authenticated with PLAIN"], texts


def test_authentication_results_claiming_our_authserv_id_are_removed(mail_daemon):
    """A sender cannot forge our own verdict: Authentication-Results fields naming our authserv-id
    (the hostname by default) are removed before the raw message is stored; others stay."""
    env = mail_daemon()
    addr = patient()
    mid = f"<{uid()}@example.net>"
    raw = build_mail(from_addr=addr, text="results please", message_id=mid)
    # Ours (folded, upper-case) first, then another server's.
    forged = (f"Authentication-Results: {SMTP_HOSTNAME.upper()};\r\n dkim=pass header.d=clinic.example\r\n"
              "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.net\r\n").encode()
    raw = forged + raw
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    wait_email_conversation(env.api, addr, timeout=10)
    [(stored,)] = mail.db_rows(env.d, "SELECT raw FROM inbound_journal WHERE channel = 'email'")
    headers = bytes(stored).split(b"\r\n\r\n", 1)[0]
    assert b"dkim=pass header.d=clinic.example" not in headers, headers
    assert b"Authentication-Results: mx.example.net; spf=pass" in headers, headers


# ---------------------------------------------------------------------------------------------
# the store cannot commit


def test_store_unavailable_is_451_and_the_retry_is_stored_once(mail_daemon):
    """Another process holds SQLite's write lock past the store's 10 s busy time-out: DATA is
    answered 451 (the MTA keeps the mail), nothing is stored; the MTA's retry is stored once."""
    import sqlite3
    env = mail_daemon()
    addr = patient()
    raw = build_mail(from_addr=addr, text="my inhaler ran out", message_id=f"<{uid()}@example.net>")
    db = sqlite3.connect(f"{env.d.workdir}/var/switchboard.sqlite", timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        res = smtp_send(env.port, addr, SUPPORT_ADDRESS, raw, timeout=40)
        assert res.stage == "data" and res.code == 451, res
        assert res.text.startswith("4.3.0"), res
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert no_email_conversations(env.api)
    log = env.d.log_text()
    assert "mail could not be stored; answered 451" in log
    assert addr not in log and "inhaler" not in log
    assert_queued(smtp_send(env.port, addr, SUPPORT_ADDRESS, raw))
    det = wait_email_conversation(env.api, addr, timeout=10)
    assert inbound_texts(det) == ["my inhaler ran out"]


# ---------------------------------------------------------------------------------------------
# shutdown


def test_sigterm_says_421_to_open_sessions(mail_daemon):
    env = mail_daemon()
    with RawSMTP(env.port, timeout=15) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<p@example.net>")[0] == 250
        env.d.proc.send_signal(signal.SIGTERM)
        r = c.reply(timeout=15)
        assert r is not None and r[0] == 421, f"open session on SIGTERM: {r}"
        assert c.closed_within(5), "connection not closed after 421"
    rc = env.d.proc.wait(timeout=15)
    assert rc == 0, f"switchboardd exit code after SIGTERM: {rc}"
