"""Email-channel helpers for the black-box tests (extends ``switchboard_harness``).

* ``Dovecot``   -- a private Dovecot IMAP server (plain IMAP + IMAPS, self-signed cert for localhost/127.0.0.1,
                   user alice@example.test / alicepw, Maildir owned by nobody:nogroup) on free loopback ports,
                   written into its own world-traversable temp dir (TESTBED.md section 1). ``deliver`` drops
                   mail in with ``doveadm save`` (works while the server is down), ``stop``/``start`` make an
                   outage, ``set_uidvalidity``/``recreate_mailbox`` change UIDVALIDITY, flag/folder queries
                   go through imaplib.
* ``MailSink``  -- an aiosmtpd recording SMTP server on a free port (the daemon's submission server): records
                   every accepted message and every DATA attempt, answers scripted replies on demand, can offer
                   STARTTLS (optionally required) and require AUTH PLAIN/LOGIN with fixed credentials.
* ``RawSMTP``   -- a tiny socket client that writes raw bytes and reads SMTP replies (smuggling, pipelining,
                   STARTTLS injection, error counting).
* helpers       -- ``smtp_send`` (smtplib), ``swaks``, ``make_cert`` (openssl), ``build_mail``/``build_dsn``
                   (the stdlib ``email`` package), ``email_overrides`` (the daemon's ``email`` section),
                   ``find_email_conversations``/``wait_email_conversation``, ``db_rows`` (read-only SQLite).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import switchboard_harness as h
from switchboard_harness import free_port, wait_until

CLINIC_DOMAIN = "clinic.example"
SMTP_HOSTNAME = "mx.clinic.example"
SUPPORT_ADDRESS = "support@clinic.example"
SUPPORT_NAME = "Clinic Support"

IMAP_USER = "alice@example.test"
IMAP_PASSWORD = "alicepw"

SINK_USER = "switchboard-relay"
SINK_PASSWORD = "relay-pw-6d1f0c2a"

LISTENER_USER = "mta-in"
LISTENER_PASSWORD = "mta-in-pw-93be71"

SWAKS = "/usr/bin/swaks"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def distinct_free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


# --------------------------------------------------------------------------------------------
# certificates


def make_cert(directory: Path | str, name: str = "server", cn: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1 (RSA 2048,
    2 days). Returns (cert_path, key_path); the cert doubles as the CA file that trusts it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.crt.pem", d / f"{name}.key.pem"
    cp = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise RuntimeError(f"openssl req failed: {cp.stderr}")
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)  # dovecot's config reader and the daemon (both root here) read it; test material only
    return cert, key


def client_tls_context(cafile: Optional[Path | str] = None) -> ssl.SSLContext:
    """Client context: verify against ``cafile`` (hostname 127.0.0.1 is in the SAN), or no verification."""
    if cafile is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=str(cafile))


# --------------------------------------------------------------------------------------------
# the daemon's email section


def email_overrides(smtp_port: Optional[int] = None, *, sink: Optional["MailSink"] = None,
                    dovecot: Optional["Dovecot"] = None, **email_kv: Any) -> dict:
    """``overrides`` for make_daemon: an SMTP listener for clinic.example on ``smtp_port`` (a free port by
    default), replies from support@clinic.example; ``sink`` adds plain submission to it, ``dovecot`` adds
    plain IMAP polling of alice's INBOX every second. ``email_kv`` overrides any key."""
    e: dict = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port or free_port(),
        "hostname": SMTP_HOSTNAME,
        "accepted_domains": CLINIC_DOMAIN,
        "from_address": SUPPORT_ADDRESS,
        "from_name": SUPPORT_NAME,
    }
    if sink is not None:
        e.update({"submission_url": sink.url, "submission_tls": "none", "submission_timeout_ms": 5000})
    if dovecot is not None:
        e.update({"imap_url": dovecot.imap_url, "imap_username": IMAP_USER, "imap_password": IMAP_PASSWORD,
                  "imap_tls": "none", "imap_poll_interval_seconds": 1})
    e.update(email_kv)
    return {"email": e}


def smtp_port_of(d: h.Daemon) -> int:
    return int(d.config["email"]["smtp_port"])


# --------------------------------------------------------------------------------------------
# building mail


def outlook_history(lang: str = "en", sender: str = f"{SUPPORT_NAME} <{SUPPORT_ADDRESS}>",
                    to: str = "Patient <patient@example.net>", subject: str = "Appointment",
                    text: str = "Your appointment is confirmed for Tuesday at 9:30.") -> str:
    """An Outlook-style quoted block (underscore rule + From/Sent/To/Subject, or De/Enviado/Para/Asunto)."""
    if lang == "es":
        head = (f"De: {sender}\nEnviado: lunes, 23 de noviembre de 2026 9:14\nPara: {to}\n"
                f"Asunto: RE: {subject}")
    else:
        head = f"From: {sender}\nSent: Monday, November 23, 2026 9:14 AM\nTo: {to}\nSubject: RE: {subject}"
    return "\n________________________________\n" + head + "\n\n" + text + "\n"


def gmail_history(lang: str = "en", sender: str = f"{SUPPORT_NAME} <{SUPPORT_ADDRESS}>",
                  text: str = "Your appointment is confirmed for Tuesday at 9:30.") -> str:
    """A Gmail/Apple-style attribution line followed by '> ' quoted lines."""
    if lang == "es":
        attribution = f"El lun, 23 nov 2026 a las 9:14, {sender} escribió:"
    else:
        attribution = f"On Mon, Nov 23, 2026 at 9:14 AM {sender} wrote:"
    quoted = "\n".join("> " + ln if ln else ">" for ln in text.splitlines())
    return "\n" + attribution + "\n" + quoted + "\n"


def build_mail(*, from_addr: str = "patient@example.net", from_name: Optional[str] = None,
               to: str | list[str] = SUPPORT_ADDRESS, cc: Optional[list[str]] = None,
               subject: Optional[str] = "Question", text: str = "Hello, I have a question.",
               html: Optional[str] = None, message_id: Optional[str] = None,
               in_reply_to: Optional[str] = None, references: Optional[list[str]] = None,
               attachments: Iterable[tuple[str, str, bytes]] = (), charset: str = "utf-8",
               cte: Optional[str] = None, utf8_headers: bool = False, date: Optional[str] = None,
               headers: Optional[dict] = None, reply_to: Optional[str] = None) -> bytes:
    """A realistic RFC 5322 message (CRLF line ends). ``html`` makes the body multipart/alternative;
    ``attachments`` = (filename, content_type, bytes) makes it multipart/mixed. ``charset``/``cte`` choose
    the text encoding (e.g. 'iso-8859-1' + 'quoted-printable', or 'utf-8' + '8bit'); ``utf8_headers``
    writes non-ASCII headers as raw UTF-8 (RFC 6532, needs SMTPUTF8) instead of RFC 2047 encoded words."""
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((from_name, from_addr)) if from_name else from_addr
    msg["To"] = ", ".join(to) if isinstance(to, list) else to
    if cc:
        msg["Cc"] = ", ".join(cc)
    if subject is not None:
        msg["Subject"] = subject
    msg["Date"] = date or email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="example.net")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["MIME-Version"] = "1.0"
    for k, v in (headers or {}).items():
        msg[k] = v
    kw: dict = {"charset": charset}
    if cte:
        kw["cte"] = cte
    msg.set_content(text, **kw)
    if html is not None:
        hkw: dict = {"subtype": "html", "charset": charset}
        if cte:
            hkw["cte"] = cte
        msg.add_alternative(html, **hkw)
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    pol = email.policy.SMTPUTF8 if utf8_headers else email.policy.SMTP
    return msg.as_bytes(policy=pol)


def build_dsn(*, original_message_id: str, original_to: str, original_from: str = SUPPORT_ADDRESS,
              original_subject: str = "Re: Appointment", to: str = SUPPORT_ADDRESS, status: str = "5.1.1",
              action: str = "failed", diagnostic: str = "smtp; 550 5.1.1 User unknown",
              reporting_mta: str = "mx.example.net") -> bytes:
    """A Postfix-style delivery status notification (RFC 3464): multipart/report; report-type=delivery-status
    with a human part, message/delivery-status and text/rfc822-headers of the original."""
    boundary = "DSN-" + h.uid()
    date = email.utils.formatdate(localtime=False)
    human = ("This is the mail system at host mx.example.net.\r\n\r\n"
             "I'm sorry to have to inform you that your message could not\r\n"
             "be delivered to one or more recipients. It's attached below.\r\n\r\n"
             "                   The mail system\r\n")
    status_part = (f"Reporting-MTA: dns; {reporting_mta}\r\n"
                   f"X-Postfix-Queue-ID: 4Zk2Qx1bq9z9\r\n"
                   f"Arrival-Date: {date}\r\n\r\n"
                   f"Final-Recipient: rfc822; {original_to}\r\n"
                   f"Original-Recipient: rfc822;{original_to}\r\n"
                   f"Action: {action}\r\n"
                   f"Status: {status}\r\n"
                   f"Remote-MTA: dns; mx.example.net\r\n"
                   f"Diagnostic-Code: {diagnostic}\r\n")
    orig_headers = (f"From: {SUPPORT_NAME} <{original_from}>\r\n"
                    f"To: {original_to}\r\n"
                    f"Subject: {original_subject}\r\n"
                    f"Date: {date}\r\n"
                    f"Message-ID: {original_message_id}\r\n"
                    f"MIME-Version: 1.0\r\n")
    raw = (f"Return-Path: <>\r\n"
           f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
           f"To: {to}\r\n"
           f"Subject: Undelivered Mail Returned to Sender\r\n"
           f"Date: {date}\r\n"
           f"Message-ID: <{h.uid('dsn.')}@mx.example.net>\r\n"
           f"Auto-Submitted: auto-replied\r\n"
           f"MIME-Version: 1.0\r\n"
           f"Content-Type: multipart/report; report-type=delivery-status;\r\n"
           f"\tboundary=\"{boundary}\"\r\n"
           f"\r\n"
           f"This is a MIME-encapsulated message.\r\n\r\n"
           f"--{boundary}\r\n"
           f"Content-Description: Notification\r\n"
           f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
           f"{human}\r\n"
           f"--{boundary}\r\n"
           f"Content-Description: Delivery report\r\n"
           f"Content-Type: message/delivery-status\r\n\r\n"
           f"{status_part}\r\n"
           f"--{boundary}\r\n"
           f"Content-Description: Undelivered Message Headers\r\n"
           f"Content-Type: text/rfc822-headers\r\n\r\n"
           f"{orig_headers}\r\n"
           f"--{boundary}--\r\n")
    return raw.encode()


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# SMTP clients


@dataclass
class SendResult:
    code: int                 # the final reply: DATA's, or the first refusal (MAIL/RCPT/STARTTLS/AUTH)
    text: str
    stage: str                # "data", "mail", "rcpt", "starttls", "auth", "ehlo"
    replies: list = field(default_factory=list)  # (stage, code, text) for every command

    @property
    def ok(self) -> bool:
        return self.stage == "data" and 200 <= self.code < 300


def smtp_send(port: int, mail_from: str, rcpt_tos: list[str] | str, raw: bytes, *, host: str = "127.0.0.1",
              starttls: bool = False, cafile: Optional[Path | str] = None, username: Optional[str] = None,
              password: Optional[str] = None, mail_options: Iterable[str] = (), rcpt_options: Iterable[str] = (),
              helo: str = "client.example.net", timeout: float = 15.0) -> SendResult:
    """One SMTP transaction with smtplib. Never raises on a refusal: returns the refusing reply (for
    several recipients, DATA is attempted if at least one was accepted)."""
    if isinstance(rcpt_tos, str):
        rcpt_tos = [rcpt_tos]
    replies: list = []

    def res(stage, code, text):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        replies.append((stage, code, text))
        return code, text

    s = smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout)
    try:
        code, text = res("ehlo", *s.ehlo())
        if code != 250:
            return SendResult(code, text, "ehlo", replies)
        if starttls:
            code, text = res("starttls", *s.docmd("STARTTLS"))
            if code != 220:
                return SendResult(code, text, "starttls", replies)
            ctx = client_tls_context(cafile)
            s.sock = ctx.wrap_socket(s.sock, server_hostname="localhost" if cafile else None)
            s.file = None
            s.helo_resp = s.ehlo_resp = None
            s.esmtp_features = {}
            s.does_esmtp = False
            code, text = res("ehlo", *s.ehlo())
        if username is not None:
            try:
                code, text = res("auth", *s.login(username, password or ""))
            except smtplib.SMTPAuthenticationError as e:
                code, text = res("auth", e.smtp_code, e.smtp_error)
                return SendResult(code, text, "auth", replies)
            except smtplib.SMTPNotSupportedError as e:
                return SendResult(0, str(e), "auth", replies)
        code, text = res("mail", *s.mail(mail_from, list(mail_options)))
        if code != 250:
            return SendResult(code, text, "mail", replies)
        accepted = 0
        first_refusal = None
        for r in rcpt_tos:
            code, text = res("rcpt", *s.rcpt(r, list(rcpt_options)))
            if code in (250, 251):
                accepted += 1
            elif first_refusal is None:
                first_refusal = (code, text)
        if not accepted:
            return SendResult(first_refusal[0], first_refusal[1], "rcpt", replies)
        code, text = res("data", *s.data(raw))
        return SendResult(code, text, "data", replies)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def swaks_tls_problem() -> Optional[str]:
    """None if swaks can speak TLS, else why not (swaks needs Net::SSLeay: libnet-ssleay-perl)."""
    if not os.access(SWAKS, os.X_OK):
        return f"{SWAKS} is not installed (apt-get install swaks)"
    cp = subprocess.run([SWAKS, "--support"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    for ln in (cp.stdout + cp.stderr).splitlines():
        if "TLS" in ln and "not available" in ln:
            return f"swaks cannot do TLS ({ln.strip()}): apt-get install libnet-ssleay-perl"
    return None


def swaks(*args: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run /usr/bin/swaks with ``args``; returns (exit code, stdout+stderr transcript)."""
    cp = subprocess.run([SWAKS, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return cp.returncode, cp.stdout + cp.stderr


class RawSMTP:
    """A bare SMTP client socket: ``send`` writes bytes verbatim, ``reply`` reads one (possibly multi-line)
    reply. ``greeting`` holds the 220 line(s)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0, read_greeting: bool = True):
        self.sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.greeting = self.reply() if read_greeting else None

    # -- I/O
    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout: Optional[float]) -> bool:
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """One CRLF-terminated line (without CRLF), None at EOF. socket.timeout if nothing in time."""
        while b"\n" not in self.buf:
            if not self._fill(timeout):
                if self.buf:
                    out, self.buf = self.buf, b""
                    return out
                return None
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r")

    def reply(self, timeout: Optional[float] = None) -> Optional[tuple[int, list[str]]]:
        """(code, [text lines]) of one reply; None if the server closed the connection first."""
        lines: list[str] = []
        while True:
            ln = self.line(timeout)
            if ln is None:
                return None if not lines else (int(lines[0][:3]), [x[4:] for x in lines])
            s = ln.decode("utf-8", "replace")
            lines.append(s)
            if len(s) < 4 or s[3] != "-":
                return int(s[:3]), [x[4:] for x in lines]

    def cmd(self, line: str | bytes, timeout: Optional[float] = None) -> Optional[tuple[int, list[str]]]:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name: str = "client.example.net") -> tuple[int, list[str]]:
        r = self.cmd(f"EHLO {name}")
        assert r is not None, "connection closed on EHLO"
        return r

    def no_reply_within(self, seconds: float) -> bool:
        """True if the server sends nothing (and does not close) for ``seconds``."""
        if self.buf:
            return False
        try:
            self.sock.settimeout(seconds)
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        except ssl.SSLWantReadError:
            return True
        self.buf += chunk
        return False

    def closed_within(self, seconds: float) -> bool:
        """True if the server closes the connection within ``seconds`` (pending bytes are discarded)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def starttls(self, cafile: Optional[Path | str] = None) -> None:
        """Wrap the socket in TLS (call after the 220 to STARTTLS). Bytes already buffered are an error."""
        assert self.buf == b"", f"unread bytes before the TLS handshake: {self.buf!r}"
        ctx = client_tls_context(cafile)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost" if cafile else None)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawSMTP":
        return self

    def __exit__(self, *a) -> None:
        self.close()


def raw_smtp(port: int, **kw) -> RawSMTP:
    return RawSMTP(port, **kw)


def ehlo_keywords(lines: list[str]) -> dict[str, str]:
    """EHLO reply lines (after the first, the hostname) -> {KEYWORD: params}."""
    out = {}
    for ln in lines[1:]:
        kw, _, params = ln.partition(" ")
        out[kw.upper()] = params
    return out


# --------------------------------------------------------------------------------------------
# the submission server: an aiosmtpd recording sink


@dataclass
class SinkMessage:
    t: float
    mail_from: str
    rcpt_tos: list
    data: bytes
    tls: bool
    auth: Optional[str]
    mail_options: list
    answer: str = ""

    @property
    def msg(self) -> EmailMessage:
        return parse(self.data)

    @property
    def message_id(self) -> Optional[str]:
        return self.msg["Message-ID"]


class MailSink:
    """aiosmtpd Controller on 127.0.0.1:<free port>. ``attempts`` records every DATA (also refused ones),
    ``messages`` only the accepted ones. Scripted answers: ``data_replies`` is consumed one per DATA
    (e.g. ``["451 4.3.0 try later"] * 2``); ``behavior(attempt, prior_attempts)`` may return a reply
    string (None = accept). ``tls=(cert, key)`` offers STARTTLS (``require_starttls`` makes it mandatory);
    ``auth=(user, password)`` requires AUTH PLAIN/LOGIN (only over TLS when ``auth_require_tls``).
    ``implicit_tls=True`` (with ``tls``) speaks TLS from the first byte, as on port 465 (``url`` is then smtps://)."""

    def __init__(self, tls: Optional[tuple] = None, require_starttls: bool = False,
                 auth: Optional[tuple[str, str]] = None, auth_require_tls: bool = True,
                 data_replies: Optional[list[str]] = None, port: Optional[int] = None, implicit_tls: bool = False):
        self.port = port or free_port()
        self.implicit_tls = implicit_tls
        self.tls = tls
        self.require_starttls = require_starttls
        self.auth = auth
        self.auth_require_tls = auth_require_tls
        self.data_replies: list[str] = list(data_replies or [])
        self.behavior: Optional[Callable[[SinkMessage, list], Optional[str]]] = None
        self.messages: list[SinkMessage] = []
        self.attempts: list[SinkMessage] = []
        self.auth_failures = 0
        self.connections = 0
        self.lock = threading.Lock()
        self.controller = None

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    def start(self) -> "MailSink":
        import logging
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-connection chatter

        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                session.host_name = hostname
                with sink.lock:
                    sink.connections += 1
                return responses

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                data = envelope.original_content or envelope.content
                if isinstance(data, str):
                    data = data.encode("utf-8", "surrogateescape")
                rec = SinkMessage(time.time(), envelope.mail_from, list(envelope.rcpt_tos), bytes(data),
                                  # aiosmtpd sets session.ssl only after STARTTLS; an implicit-TLS
                                  # listener accepts nothing but TLS.
                                  session.ssl is not None or sink.implicit_tls,
                                  session.auth_data if session.authenticated else None,
                                  list(envelope.mail_options))
                with sink.lock:
                    prior = list(sink.attempts)
                    answer = None
                    if sink.data_replies:
                        answer = sink.data_replies.pop(0)
                    elif sink.behavior is not None:
                        answer = sink.behavior(rec, prior)
                    rec.answer = answer or "250 2.0.0 Ok: queued"
                    sink.attempts.append(rec)
                    if answer is None:
                        sink.messages.append(rec)
                return rec.answer

        kw: dict = dict(hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True, ready_timeout=10,
                        server_hostname="sink.example.test")
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            if self.implicit_tls:
                kw.update(ssl_context=ctx)
            else:
                kw.update(tls_context=ctx, require_starttls=self.require_starttls)
        if self.auth:
            user, pw = self.auth

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                      and auth_data.password.decode() == pw)
                if not ok:
                    with sink.lock:
                        sink.auth_failures += 1
                return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=self.auth_require_tls)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.controller = Controller(Handler(), **kw)
            self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
            self.controller = None

    # -- queries
    def snapshot(self) -> list[SinkMessage]:
        with self.lock:
            return list(self.messages)

    def attempts_snapshot(self) -> list[SinkMessage]:
        with self.lock:
            return list(self.attempts)

    def wait_messages(self, n: int = 1, timeout: float = 20.0) -> list[SinkMessage]:
        return wait_until(lambda: (lambda m: m if len(m) >= n else None)(self.snapshot()), timeout, 0.05,
                          f"{n} message(s) at the sink (attempts so far: "
                          f"{[(a.rcpt_tos, a.answer) for a in self.attempts_snapshot()]})")

    def wait_attempts(self, n: int, timeout: float = 20.0) -> list[SinkMessage]:
        return wait_until(lambda: (lambda m: m if len(m) >= n else None)(self.attempts_snapshot()), timeout, 0.05,
                          f"{n} DATA attempt(s) at the sink")


# --------------------------------------------------------------------------------------------
# Dovecot


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


class Postfix:
    """A private Postfix instance (TESTBED.md 2b) on a free loopback port, relaying mail for
    ``domain`` to ``relay_port`` on 127.0.0.1 — the organisation's MTA in front of Switchboard.
    Retries deferred mail every few seconds (not Postfix's default minutes). Needs root (the
    queue belongs to Postfix's own user) and the postfix package."""

    def __init__(self, relay_port: int, domain: str = "clinic.example"):
        self.dir = Path(tempfile.mkdtemp(prefix="sb-postfix-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.relay_port = relay_port
        self.domain = domain
        self.etc = self.dir / "etc"
        self.maillog = self.dir / "maillog"

    def start(self) -> "Postfix":
        for sub in ("etc", "queue", "data"):
            (self.dir / sub).mkdir(exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        (self.etc / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
maillog_file = {self.maillog}
maillog_file_prefixes = {self.dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.hospital.example.test
mydomain = hospital.example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relay_domains = {self.domain}
relay_recipient_maps =
relay_transport = relay:[127.0.0.1]:{self.relay_port}
default_transport = error:5.7.1 only {self.domain} is relayed here
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_host_lookup = native
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maximal_queue_lifetime = 5m
""")
        template = (Path(__file__).parent / "postfix-master.cf").read_text()
        (self.etc / "master.cf").write_text(template.replace("__PORT__", str(self.port)))
        r = subprocess.run(["script", "-qec", f"postfix -c {self.etc} start", "/dev/null"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"postfix did not start: {r.stdout[-2000:]} {r.stderr[-2000:]}"
        wait_until(lambda: port_open(self.port), 15, 0.1, "postfix listening")
        return self

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def queue_is_empty(self) -> bool:
        r = subprocess.run(["postqueue", "-c", str(self.etc), "-j"], capture_output=True, text=True, timeout=30)
        return r.returncode == 0 and not r.stdout.strip()

    def send(self, mail: bytes, sender: str, recipients: list[str]) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("patient-mua.example.net")
            c.sendmail(sender, recipients, mail)

    def close(self) -> None:
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Dovecot:
    """A private Dovecot (IMAP on ``imap_port`` with STARTTLS, IMAPS on ``imaps_port``) serving
    alice@example.test / alicepw from a Maildir owned by nobody:nogroup. Everything lives in ``dir``
    (a 0755 temp dir: dovecot's unprivileged processes must traverse it)."""

    def __init__(self, directory: Optional[Path] = None):
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="sb-dovecot-"))
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.imap_port, self.imaps_port = distinct_free_ports(2)
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.proc: Optional[subprocess.Popen] = None
        import grp
        import pwd
        self.muid = pwd.getpwnam("nobody").pw_uid
        self.mgid = grp.getgrnam("nogroup").gr_gid
        self.cert, self.key = make_cert(self.dir / "tls", "dovecot")
        os.chmod(self.dir / "tls", 0o755)
        self.home = self.dir / "mail" / IMAP_USER
        self.maildir = self.home / "Maildir"
        self._write()

    @property
    def imap_url(self) -> str:
        return f"imap://127.0.0.1:{self.imap_port}"

    @property
    def imaps_url(self) -> str:
        return f"imaps://127.0.0.1:{self.imaps_port}"

    def _write(self) -> None:
        d = self.dir
        for sub in ("run", "state"):
            (d / sub).mkdir(exist_ok=True)
        (d / "users").write_text(
            f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}:{self.muid}:{self.mgid}::{self.home}::\n")
        os.chmod(d / "users", 0o644)
        self.conf.write_text(f"""# private test dovecot; nothing from /etc/dovecot is read
instance_name = sb-dovecot-{self.imap_port}
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
info_log_path = {self.log}
mail_debug = no
auth_verbose = yes
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
""")
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "mail", 0o755)
        _chown_tree(self.home, self.muid, self.mgid)

    # -- lifecycle
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> "Dovecot":
        assert not self.running(), "dovecot already running"
        out = open(self.dir / "stdout.log", "ab")
        try:
            self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # setsid: its pid is the process group
        finally:
            out.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}\n{self.tail()}")
            return port_open(self.imap_port) and port_open(self.imaps_port)
        wait_until(ready, timeout, 0.05, "dovecot IMAP/IMAPS ports")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the whole process group, wait for the master and for both ports to close."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        try:  # children that outlived the master
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        wait_until(lambda: not port_open(self.imap_port) and not port_open(self.imaps_port), timeout, 0.05,
                   "dovecot ports to close")

    def close(self, remove: bool = True) -> None:
        self.stop()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, n: int = 30) -> str:
        out = ""
        for f in ("stdout.log", "dovecot.log"):
            p = self.dir / f
            if p.exists():
                out += f"---- {p} ----\n" + "\n".join(p.read_text(errors="replace").splitlines()[-n:]) + "\n"
        return out

    # -- doveadm (works whether or not the server runs)
    def doveadm(self, *args: str, input: Optional[bytes] = None, check: bool = True) -> subprocess.CompletedProcess:
        """``doveadm <args>`` for alice, run as the mail user with USER/HOME set instead of ``-u``: ``-u``
        needs the running server's auth-userdb socket, this works during an outage as well."""
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(self.home), "USER": IMAP_USER}
        cmd = ["setpriv", f"--reuid={self.muid}", f"--regid={self.mgid}", "--clear-groups",
               "doveadm", "-c", str(self.conf), "-o", "log_path=/dev/stderr", "-o", "info_log_path=/dev/stderr",
               "-o", "stats_writer_socket_path=", *args]
        cp = subprocess.run(cmd, input=input, capture_output=True, timeout=30, env=env,
                            stdin=None if input is not None else subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(f"doveadm {' '.join(args)} -> exit {cp.returncode}: "
                                 f"{cp.stderr.decode(errors='replace')}")
        return cp

    def deliver(self, raw: bytes, mailbox: str = "INBOX") -> None:
        self.doveadm("save", "-m", mailbox, input=raw)

    def uid_of(self, message_id: str, mailbox: str = "INBOX") -> int:
        cp = self.doveadm("-f", "tab", "fetch", "uid hdr.message-id", "mailbox", mailbox, "ALL")
        for ln in cp.stdout.decode(errors="replace").splitlines()[1:]:
            parts = ln.split("\t")
            if len(parts) >= 2 and parts[1].strip() == message_id:
                return int(parts[0])
        raise AssertionError(f"{message_id} not in {mailbox}")

    def add_flag(self, uid: int, flag: str = "\\Seen", mailbox: str = "INBOX") -> None:
        self.doveadm("flags", "add", flag, "mailbox", mailbox, "uid", str(uid))

    def create_mailbox(self, name: str) -> None:
        self.doveadm("mailbox", "create", name)

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        cp = self.doveadm("-f", "flow", "mailbox", "status", "uidvalidity", mailbox)
        m = re.search(r"uidvalidity=(\d+)", cp.stdout.decode())
        assert m, cp.stdout
        return int(m.group(1))

    def set_uidvalidity(self, value: int, mailbox: str = "INBOX") -> None:
        """Change the mailbox's UIDVALIDITY in place (the UIDs stay)."""
        self.doveadm("mailbox", "update", "--uid-validity", str(value), mailbox)

    def recreate_inbox(self) -> None:
        """Forget INBOX's UID list and indexes (as after a restore or a server migration): Dovecot
        rebuilds them with a new UIDVALIDITY and renumbers the same messages from UID 1. Server must
        be stopped."""
        assert not self.running(), "stop dovecot first"
        for f in self.maildir.iterdir():
            if f.name.startswith("dovecot-uidlist") or f.name.startswith("dovecot.index"):
                f.unlink()
        # Maildir file names carry no UID; Dovecot assigns fresh ones on next access
        time.sleep(1.1)  # UIDVALIDITY is a timestamp: make sure the new one differs

    # -- imaplib views
    def imap(self) -> imaplib.IMAP4:
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        m.login(IMAP_USER, IMAP_PASSWORD)
        return m

    def _fetch_all(self, mailbox: str) -> dict[int, tuple[set, Optional[str]]]:
        m = self.imap()
        try:
            typ, _ = m.select(_q(mailbox), readonly=True)
            assert typ == "OK", f"SELECT {mailbox}: {typ}"
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            out: dict[int, tuple[set, Optional[str]]] = {}
            for item in data:
                if not isinstance(item, tuple):
                    continue
                meta = item[0].decode()
                mu = re.search(r"UID (\d+)", meta)
                mf = re.search(r"FLAGS \(([^)]*)\)", meta)
                hdr = parse(item[1])
                if mu:
                    out[int(mu.group(1))] = (set(mf.group(1).split()) if mf else set(), hdr["Message-ID"])
            return out
        finally:
            try:
                m.logout()
            except Exception:  # noqa: BLE001
                pass

    def all_flags(self, mailbox: str = "INBOX") -> dict[int, set]:
        return {u: f for u, (f, _) in self._fetch_all(mailbox).items()}

    def flags(self, uid: int, mailbox: str = "INBOX") -> set:
        return self.all_flags(mailbox).get(uid, set())

    def folder_uids(self, name: str = "INBOX") -> list[int]:
        return sorted(self._fetch_all(name))

    def message_ids(self, mailbox: str = "INBOX") -> dict[int, Optional[str]]:
        return {u: mid for u, (_, mid) in self._fetch_all(mailbox).items()}


def _q(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# the daemon's side: conversations of an email address, messages, metrics, the store


def email_identity(det: dict) -> list[str]:
    return [i["value"].lower() for i in det["contact"]["identities"] if i.get("kind") == "email"]


def all_conversations(api: h.Api) -> list[dict]:
    r = api.get("/conversations", status="any", assignee="any", limit=500)
    assert r.status_code == 200, f"list -> {r.status_code} {r.text[:300]}"
    return r.json()["conversations"]


def find_email_conversations(api: h.Api, address: Optional[str] = None) -> list[dict]:
    """Details of every email conversation (whose contact has the email identity ``address``, if
    given), oldest first."""
    out = []
    for c in all_conversations(api):
        det = api.conversation(c["id"])
        if det["conversation"]["channel"] != "email":
            continue
        if address is None or address.lower() in email_identity(det):
            out.append(det)
    out.sort(key=lambda d: h.parse_time(d["conversation"]["created_at"]))
    return out


def inbound(det: dict) -> list[dict]:
    return [m for m in det["messages"] if m["direction"] == "inbound"]


def inbound_texts(det: dict) -> list[str]:
    return [m["text"] for m in inbound(det)]


def wait_email_conversation(api: h.Api, address: str, n_messages: int = 1, timeout: float = 15.0) -> dict:
    """The single email conversation of ``address`` once it holds at least ``n_messages`` inbound messages."""
    def check():
        convs = find_email_conversations(api, address)
        if len(convs) == 1 and len(inbound(convs[0])) >= n_messages:
            return convs[0]
        return None
    return wait_until(check, timeout, 0.1, f"email conversation of {address} with {n_messages} inbound message(s)")


def all_inbound_email(api: h.Api) -> list[dict]:
    """Every inbound email message of every conversation (each with its conversation id added)."""
    out = []
    for det in find_email_conversations(api):
        for m in inbound(det):
            out.append(dict(m, conversation_id=det["conversation"]["id"]))
    return out


def metric_value(d: h.Daemon, name: str, labels: Optional[dict] = None) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    import requests
    text = requests.get(f"{d.url}/metrics", timeout=h.HTTP_TIMEOUT).text
    total = 0.0
    for ln in text.splitlines():
        if ln.startswith("#") or not ln.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", ln)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in (labels or {}).items()):
            total += float(m.group(3))
    return total


def db_rows(d: h.Daemon, sql: str, params: tuple = ()) -> list[tuple]:
    """Read-only query against the daemon's SQLite store (for facts the API does not show)."""
    import sqlite3
    db = sqlite3.connect(f"file:{d.workdir}/var/switchboard.sqlite?mode=ro", uri=True, timeout=10)
    try:
        return list(db.execute(sql, params))
    finally:
        db.close()
