"""SMS-channel helpers for the black-box tests (extends ``switchboard_harness``).

* ``FakeTwilioAPI`` -- a local stand-in for Twilio's REST Messages resource
  (``POST /2010-04-01/Accounts/{AC}/Messages.json``): checks HTTP Basic auth, answers 201 with a
  Twilio-shaped message JSON, records every request, and can answer scripted failures
  (5xx, 429 + Retry-After, 4xx with a Twilio error body).
* ``post_twilio`` -- POST a form to the daemon's Twilio webhooks, signed with the official
  ``twilio.request_validator.RequestValidator`` (or deliberately not).
* ``Kannel`` -- a private bearerbox + smsbox with a ``smsc = fake`` link on FREE loopback ports,
  whose sms-services call the daemon; ``FakeSMSC`` is the in-process client on the fake link
  (inject MO, read MT) from the testbed recipe, with a reader thread so waits are bounded.
* ``sms_overrides`` / ``find_sms_conversations`` / small helpers shared by the SMS test files.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import requests
from twilio.request_validator import RequestValidator

import switchboard_harness as h
from switchboard_harness import free_port, wait_until

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twl-auth-tok-9c1e55a0d7b34f26"
TWILIO_FROM = "+15550009999"          # the clinic's Twilio number (twilio.from_number)
KANNEL_SECRET = "kannel-secret-5b7f2e9a41c8d3"
KANNEL_USER = "sbuser"
KANNEL_PASSWORD = "sbpass-kan-77e1"
CLINIC_SHORT = "+15550008888"         # the number patients text through Kannel

TWILIO_PATH = "/webhooks/sms/twilio"
TWILIO_STATUS_PATH = "/webhooks/sms/twilio/status"
KANNEL_PATH = "/webhooks/sms/kannel"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

HELP_TEXT = "Reply STOP to stop messages, START to resume. For a medical emergency call 911."
STOP_REPLY = "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
START_REPLY = "You are resubscribed. Reply STOP to unsubscribe."
NOTICE_TEXT = "You have a new message from your care team: reply here or open the patient portal."


def patient_number() -> str:
    """A fresh fictional NANP number (555-01xx range), E.164."""
    return f"+1555010{random.randint(0, 9999):04d}"


def sid() -> str:
    return "SM" + uuid.uuid4().hex


# --------------------------------------------------------------------------------------------
# configuration


def sms_overrides(*, twilio_api: Optional[str] = None, twilio_public: Optional[str] = None,
                  kannel_sendsms: Optional[str] = None, kannel_public: Optional[str] = None,
                  twilio: Optional[dict] = None, kannel: Optional[dict] = None, sms: Optional[dict] = None,
                  twilio_inbound: bool = True, kannel_inbound: bool = False) -> dict:
    """Config sections for an SMS daemon. ``twilio_api`` enables Twilio outbound (fake API base URL),
    ``kannel_sendsms`` enables Kannel outbound."""
    o: dict = {"sms": {"reopen_window_seconds": 604800, "segment_warning": 3, "help_text": HELP_TEXT,
                       "stop_reply": STOP_REPLY, "start_reply": START_REPLY, "notify_only": False,
                       "notice_text": NOTICE_TEXT}}
    tw: dict = {}
    if twilio_inbound or twilio_api:
        tw["auth_token"] = TWILIO_TOKEN
    if twilio_api:
        tw.update({"account_sid": TWILIO_SID, "api_base_url": twilio_api, "from_number": TWILIO_FROM,
                   "timeout_ms": 3000})
    if twilio_public:
        tw["public_url"] = twilio_public
    tw.update(twilio or {})
    if tw:
        o["twilio"] = tw
    kn: dict = {}
    if kannel_inbound or kannel_sendsms:
        kn["shared_secret"] = KANNEL_SECRET
    if kannel_sendsms:
        kn.update({"sendsms_url": kannel_sendsms, "username": KANNEL_USER, "password": KANNEL_PASSWORD,
                   "public_url": kannel_public or "", "from_number": CLINIC_SHORT, "dlr_mask": 31,
                   "timeout_ms": 3000})
    kn.update(kannel or {})
    if kn:
        o["kannel"] = kn
    o["sms"].update(sms or {})
    return o


# --------------------------------------------------------------------------------------------
# Twilio webhooks (daemon side)


def twilio_form(frm: str, body: str, to: str = TWILIO_FROM, message_sid: Optional[str] = None, **extra) -> dict:
    form = {"MessageSid": message_sid or sid(), "SmsSid": "", "AccountSid": TWILIO_SID, "From": frm, "To": to,
            "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
            "FromCountry": "US", "ToCountry": "US"}
    form["SmsSid"] = form["MessageSid"]
    form.update({k: str(v) for k, v in extra.items()})
    return form


def twilio_signature(url: str, form: dict, token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def post_twilio(d: h.Daemon, form: dict, *, path: str = TWILIO_PATH, sign_url: Optional[str] = None,
                token: str = TWILIO_TOKEN, sign_form: Optional[dict] = None, signature: Optional[str] = None,
                drop_signature: bool = False, headers: Optional[dict] = None, data: Any = None,
                session: Optional[requests.Session] = None) -> requests.Response:
    """POST ``form`` (form-encoded) to the daemon. Signed over ``sign_url`` (default: the daemon's
    twilio.public_url, else its own URL, + path) and ``sign_form`` (default: ``form``)."""
    if sign_url is None:
        base = d.config.get("twilio", {}).get("public_url") or d.url
        sign_url = base.rstrip("/") + path
    hdrs = {}
    if not drop_signature:
        hdrs["X-Twilio-Signature"] = signature if signature is not None else twilio_signature(
            sign_url, sign_form if sign_form is not None else form, token)
    hdrs.update(headers or {})
    poster = session or requests
    return poster.post(d.url + path, data=form if data is None else data, headers=hdrs, timeout=h.HTTP_TIMEOUT)


def twilio_in(d: h.Daemon, frm: str, body: str, **kw) -> requests.Response:
    """A correctly signed inbound SMS; asserts the TwiML 200."""
    form = twilio_form(frm, body, **{k: v for k, v in kw.items() if k in ("to", "message_sid")},
                       **kw.get("extra", {}))
    r = post_twilio(d, form)
    assert r.status_code == 200, f"twilio inbound -> {r.status_code} {r.text[:300]}"
    return r


def twilio_status(d: h.Daemon, message_sid: str, status: str, error_code: Optional[str] = None,
                  to: str = "+15550100000") -> requests.Response:
    form = {"MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": TWILIO_SID, "From": TWILIO_FROM, "To": to, "ApiVersion": "2010-04-01"}
    if error_code is not None:
        form["ErrorCode"] = error_code
    return post_twilio(d, form, path=TWILIO_STATUS_PATH)


# --------------------------------------------------------------------------------------------
# the conversations of one phone number (the Twilio/Kannel answers carry no conversation id)


def find_sms_conversations(api: h.Api, phone: str) -> list[dict]:
    """Details (GET /conversations/{id}) of every conversation whose contact has this phone identity,
    oldest first."""
    out = []
    for c in api.list(status="any", assignee="any"):
        det = api.conversation(c["id"])
        idents = det["contact"]["identities"]
        if any(i.get("kind") == "phone" and i.get("value") == phone for i in idents):
            out.append(det)
    out.sort(key=lambda d: h.parse_time(d["conversation"]["created_at"]))
    return out


def wait_sms_conversation(api: h.Api, phone: str, n_messages: int = 1, timeout: float = 15.0) -> dict:
    """The single conversation of ``phone`` once it holds at least ``n_messages`` inbound messages."""
    def check():
        convs = find_sms_conversations(api, phone)
        if len(convs) == 1 and len([m for m in convs[0]["messages"] if m["direction"] == "inbound"]) >= n_messages:
            return convs[0]
        return None
    return wait_until(check, timeout, 0.1, f"conversation of {phone} with {n_messages} inbound message(s)")


def inbound_texts(det: dict) -> list[str]:
    return [m["text"] for m in det["messages"] if m["direction"] == "inbound"]


def reply_raw(api: h.Api, cid: str, text: str) -> requests.Response:
    return api.post(f"/conversations/{cid}/messages", {"text": text})


# --------------------------------------------------------------------------------------------
# the fake Twilio REST API


@dataclass
class TwilioCall:
    t: float
    method: str
    path: str
    headers: dict
    form: dict
    auth_ok: bool
    status: int = 0
    sid: Optional[str] = None

    @property
    def body(self) -> Optional[str]:
        return self.form.get("Body")


class FakeTwilioAPI(h.ServerThread):
    """``behavior(call, prior_calls_with_same_body)`` returns None (normal 201), a status, or
    ``(status, extra_headers, json_obj)``. To == +15005550001 answers 400/21211 like Twilio's magic number."""

    def __init__(self, sid: str = TWILIO_SID, token: str = TWILIO_TOKEN):
        self.account_sid, self.token = sid, token
        self.port = free_port()
        self.calls: list[TwilioCall] = []
        self.lock = threading.Lock()
        self.behavior: Optional[Callable[[TwilioCall, list], Any]] = None
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def error(code: int, message: str, status: int = 400) -> tuple:
        return (status, {}, {"code": code, "message": message,
                             "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})

    def start(self) -> "FakeTwilioAPI":
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, obj: Any, extra: Optional[dict] = None):
                b = json.dumps(obj).encode() if obj is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(b)))
                    for k, v in (extra or {}).items():
                        self.send_header(k, str(v))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b)
                except OSError:
                    pass
                self.close_connection = True

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                form = {k: v[0] if len(v) == 1 else v
                        for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
                want = "Basic " + base64.b64encode(f"{fake.account_sid}:{fake.token}".encode()).decode()
                call = TwilioCall(time.monotonic(), "POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                  form, self.headers.get("Authorization") == want)
                m = re.fullmatch(r"/2010-04-01/Accounts/(AC\w+)/Messages\.json", self.path)
                with fake.lock:
                    prior = [c for c in fake.calls if c.body == call.body]
                    if not m:
                        decision = (404, {}, {"code": 20404, "message": "The requested resource was not found",
                                              "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
                    elif not call.auth_ok:
                        decision = (401, {}, {"code": 20003, "message": "Authenticate",
                                              "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
                    else:
                        decision = fake.behavior(call, prior) if fake.behavior else None
                        if decision is None and form.get("To") == "+15005550001":
                            decision = FakeTwilioAPI.error(
                                21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
                    if decision is None:
                        decision = 201
                    if not isinstance(decision, tuple):
                        decision = (decision, {}, None)
                    status, extra, obj = decision
                    if 200 <= status < 300 and obj is None:
                        call.sid = sid()
                        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
                        obj = {"sid": call.sid, "account_sid": m.group(1), "to": form.get("To"),
                               "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
                               "body": form.get("Body", ""), "status": "queued", "direction": "outbound-api",
                               "num_segments": "1", "num_media": "0", "price": None, "price_unit": "USD",
                               "error_code": None, "error_message": None, "api_version": "2010-04-01",
                               "date_created": now, "date_updated": now, "date_sent": None,
                               "uri": f"/2010-04-01/Accounts/{m.group(1)}/Messages/{call.sid}.json",
                               "subresource_uris": {}}
                    elif obj is None:
                        obj = {"code": 20500, "message": "Internal Server Error",
                               "more_info": "https://www.twilio.com/docs/errors/20500", "status": status}
                    call.status = status
                    fake.calls.append(call)
                self._send(status, obj, extra)

            def log_message(self, *a):
                pass

        self._serve(Handler)
        return self


    def snapshot(self) -> list[TwilioCall]:
        with self.lock:
            return list(self.calls)

    def accepted(self) -> list[TwilioCall]:
        return [c for c in self.snapshot() if 200 <= c.status < 300]

    def wait_body(self, body: str, timeout: float = 15.0, to: Optional[str] = None) -> TwilioCall:
        def check():
            for c in self.accepted():
                if c.body == body and (to is None or c.form.get("To") == to):
                    return c
            return None
        return wait_until(check, timeout, 0.05,
                          f"fake Twilio to accept Body={body!r} (seen: {[(c.body, c.status) for c in self.snapshot()]})")

    def bodies_to(self, to: str) -> list[str]:
        return [c.body for c in self.accepted() if c.form.get("To") == to]


# --------------------------------------------------------------------------------------------
# Kannel: bearerbox + smsbox + fake SMSC link, private config, free ports


def kannel_installed() -> Optional[str]:
    """None if bearerbox/smsbox/the fake SMSC line protocol are usable, else the reason."""
    for b in ("bearerbox", "smsbox"):
        if shutil.which(b) is None and not os.access(f"/usr/sbin/{b}", os.X_OK):
            return f"Kannel's {b} is not installed (apt-get install kannel)"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Kannel:
    """bearerbox + smsbox on free ports. ``daemon_port`` is where the sms-services point (the daemon's
    /webhooks/sms/kannel); MO whose first word is ``post`` goes to the post-url variant."""

    def __init__(self, workdir: Path, daemon_port: int, secret: str = KANNEL_SECRET,
                 username: str = KANNEL_USER, password: str = KANNEL_PASSWORD):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = set()
        while len(ports) < 4:
            p = free_port()
            if p not in (13000, 13001, 13013, 10000):
                ports.add(p)
        self.admin_port, self.box_port, self.sendsms_port, self.smsc_port = sorted(ports)
        self.daemon_port = daemon_port
        self.secret, self.username, self.password = secret, username, password
        self.conf = self.dir / "kannel.conf"
        self.procs: list[subprocess.Popen] = []
        self.write_conf()

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def write_conf(self) -> None:
        d, q = self.dir, urllib.parse.quote(self.secret, safe="")
        base = f"http://127.0.0.1:{self.daemon_port}{KANNEL_PATH}"
        self.conf.write_text(f"""
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = adminpw
status-password = statuspw
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.box_port}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
log-file = "{d}/bearerbox.log"
log-level = 0
access-log = "{d}/access.log"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = FAKE
port = {self.smsc_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
mo-recode = true
log-file = "{d}/smsbox.log"
log-level = 0
access-log = "{d}/smsbox-access.log"

group = sendsms-user
username = {self.username}
password = {self.password}
max-messages = 10
concatenation = true

group = sms-service
keyword = post
post-url = "{base}?secret={q}&id=%I"
send-sender = true
accept-x-kannel-headers = true
omit-empty = true
max-messages = 1

group = sms-service
keyword = default
catch-all = true
get-url = "{base}?secret={q}&from=%p&to=%P&text=%a&id=%I&coding=%c&charset=%C"
omit-empty = true
max-messages = 1
""")

    def _spawn(self, name: str) -> subprocess.Popen:
        out = open(self.dir / f"{name}.out", "ab")
        try:
            p = subprocess.Popen([_binary(name), "-v", "1", str(self.conf)], cwd=self.dir, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        self.procs.append(p)
        return p

    def status(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.admin_port}/status.txt",
                            params={"password": "statuspw"}, timeout=3).text

    def _alive(self, p: subprocess.Popen, name: str) -> None:
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}\n{self.tail(name)}")

    def start(self, timeout: float = 20.0) -> "Kannel":
        """bearerbox first, then smsbox (the documented order); ready = smsbox registered."""
        bb = self._spawn("bearerbox")
        wait_until(lambda: self._alive(bb, "bearerbox") or (port_open(self.admin_port) and port_open(self.box_port)),
                   timeout, 0.05, "bearerbox admin+box ports")
        sb = self._spawn("smsbox")
        wait_until(lambda: self._alive(sb, "smsbox") or port_open(self.sendsms_port), timeout, 0.05,
                   "smsbox sendsms port")
        wait_until(lambda: re.search(r"^\s+smsbox:", self.status(), re.M), timeout, 0.1, "smsbox registered")
        return self

    def connect_smsc(self, timeout: float = 15.0) -> "FakeSMSC":
        c = FakeSMSC(port=self.smsc_port)
        wait_until(lambda: re.search(r"^\s+FAKE\[FAKE\].*\(online", self.status(), re.M), timeout, 0.1,
                   "fake SMSC link online")
        return c

    def tail(self, name: str, n: int = 30) -> str:
        out = ""
        for f in (f"{name}.out", f"{name}.log"):
            p = self.dir / f
            if p.exists():
                out += f"---- {f} ----\n" + "\n".join(p.read_text(errors="replace").splitlines()[-n:]) + "\n"
        return out

    def stop(self) -> None:
        for p in reversed(self.procs):  # smsbox first, then bearerbox
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self.procs = []


class FakeSMSC:
    """Kannel's fake SMSC line protocol (in-process replacement for ``fakesmsc``): ``send_mo`` injects
    a mobile-originated message, MTs Kannel routes to the link are queued by a reader thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 10000):
        self.s = socket.create_connection((host, port), timeout=10)
        self.s.settimeout(None)
        self.f = self.s.makefile("rb")
        self.mt: "queue.Queue[tuple]" = queue.Queue()
        self.all_mt: list[tuple] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        raw = lambda d: urllib.parse.unquote_to_bytes(d.replace("+", "%20"))  # noqa: E731
        while True:
            try:
                line = self.f.readline()
            except (OSError, ValueError):
                return
            if not line:
                return
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 3)
            if len(parts) < 4:
                continue
            sender, receiver, typ, data = parts
            if typ == "ucs-2":
                data = raw(data).decode("utf-16-be")
            elif typ == "data":
                data = raw(data).decode("latin-1")
            elif typ == "text":
                data = data.encode("latin-1").decode("utf-8", "replace")
            rec = (sender, receiver, data, typ)
            self.all_mt.append(rec)
            self.mt.put(rec)

    def send_mo(self, sender: str, receiver: str, text: str) -> None:
        if text.isascii() and "\n" not in text:
            line = f"{sender} {receiver} text {text}\n"
        else:
            line = f"{sender} {receiver} ucs2 {urllib.parse.quote(text.encode('utf-16-be'))}\n"
        self.s.sendall(line.encode())

    def recv_mt(self, timeout: float = 15.0) -> tuple:
        """-> (sender, receiver, text, type) of the next MT, AssertionError after ``timeout``."""
        try:
            return self.mt.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MT at the fake SMSC within {timeout}s (all so far: {self.all_mt})")

    def wait_mt(self, pred: Callable[[tuple], bool], timeout: float = 15.0, what: str = "MT") -> tuple:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what} at the fake SMSC "
                                     f"(all MT so far: {self.all_mt})")
            try:
                rec = self.mt.get(timeout=left)
            except queue.Empty:
                continue
            if pred(rec):
                return rec

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.mt.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()
