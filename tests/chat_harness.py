"""A web-chat client for the black-box tests: the widget's side of channels/webchat/PROTOCOL.md,
over a real WebSocket (websocket-client), with helpers to wait for frames of a given type."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Callable, Optional

import websocket  # websocket-client

from switchboard_harness import answer_close_best_effort

IDENTITY_SECRET = "site-identity-secret-of-at-least-32-chars"


def identity_hash(patient_id: str, secret: str = IDENTITY_SECRET, expires: Optional[int] = None) -> str:
    """What the embedding site computes on its server (with an expiry: over "id:expires")."""
    signed = patient_id if expires is None else f"{patient_id}:{expires}"
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()


class Closed(Exception):
    def __init__(self, code: Optional[int], reason: str):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class ChatClient:
    def __init__(self, base_url: str, origin: Optional[str] = None, timeout: float = 10.0):
        self.url = base_url.replace("http://", "ws://") + "/chat"
        headers = []
        self.ws = websocket.create_connection(self.url, timeout=timeout, origin=origin,
                                              suppress_origin=origin is None, header=headers)
        answer_close_best_effort(self.ws)
        self.frames: list[dict] = []      # everything received, in order
        self.backlog: list[dict] = []     # received but not yet taken by expect()
        self.close_code: Optional[int] = None
        self.close_reason = ""

    # -- sending
    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def hello(self, token: Optional[str] = None, last_seq: Optional[int] = None, identity: Optional[dict] = None,
              **extra) -> dict:
        frame = {"type": "hello", "v": 1, **extra}
        if token:
            frame["visitor_token"] = token
        if last_seq is not None:
            frame["last_seq"] = last_seq
        if identity:
            frame["identity"] = identity
        self.send(frame)
        return self.expect("welcome")

    def message(self, text: str, client_id: Optional[str] = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        self.send({"type": "message", "client_id": client_id, "text": text})
        return client_id

    # -- receiving
    def _read(self, deadline: float) -> dict:
        remaining = max(0.05, deadline - time.time())
        self.ws.settimeout(remaining)
        try:
            opcode, data = self.ws.recv_data(control_frame=False)
        except websocket.WebSocketTimeoutException:
            raise TimeoutError("no frame in time")
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            raise Closed(self.close_code, self.close_reason)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            self.close_reason = data[2:].decode("utf-8", "replace")
            raise Closed(self.close_code, self.close_reason)
        frame = json.loads(data.decode("utf-8"))
        self.frames.append(frame)
        return frame

    def expect(self, type_: str, timeout: float = 10.0, where: Callable[[dict], bool] = lambda f: True) -> dict:
        """The next frame of this type (matching `where`), keeping others in the backlog."""
        for i, frame in enumerate(self.backlog):
            if frame.get("type") == type_ and where(frame):
                return self.backlog.pop(i)
        deadline = time.time() + timeout
        while True:
            if time.time() > deadline:
                raise TimeoutError(f"no {type_} frame within {timeout}s; got {[f.get('type') for f in self.backlog]}")
            frame = self._read(deadline)
            if frame.get("type") == type_ and where(frame):
                return frame
            self.backlog.append(frame)

    def expect_close(self, timeout: float = 10.0) -> tuple[Optional[int], str]:
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                self.backlog.append(self._read(deadline))
        except Closed as closed:
            return closed.code, closed.reason
        raise TimeoutError("the server did not close the connection")

    def quiet(self, seconds: float) -> list[dict]:
        """Frames arriving within `seconds` (for asserting that nothing more comes)."""
        got = []
        deadline = time.time() + seconds
        try:
            while True:
                got.append(self._read(deadline))
        except TimeoutError:
            return got

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
