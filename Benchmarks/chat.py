"""Benchmark (not a test): web chat memory per idle connection, and patient → agent latency.

1. Memory: opens N chat WebSockets (default 5,000) that each say hello and then stay idle,
   and reports the daemon's resident memory (VmRSS) before and after, per connection.
2. Latency: P patients (default 50) each send a message at a steady total rate; an agent
   follows /api/v1/events. Per message: send → `ack` (committed) and send → the agent's
   `message.created` event, p50/p99/max. Each patient has one message in flight at a time.

    SWITCHBOARD_BIN_DIR=.build/release .venv/bin/python Benchmarks/chat.py [connections] [rate] [seconds]

The clients are one asyncio process speaking RFC 6455 directly (masking, pings answered), so
5,000 of them cost little next to the daemon. Both sides need file descriptors: the limit is
raised to 65,536 (as root) before the daemon starts.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import websocket  # noqa: E402
from switchboard_harness import Daemon  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
CONNECTIONS = int(ARGS[0]) if ARGS else 5000
RATE = float(ARGS[1]) if len(ARGS) > 1 else 20.0
SECONDS = float(ARGS[2]) if len(ARGS) > 2 else 20.0
PATIENTS = 50


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Socket:
    """A minimal WebSocket client on asyncio streams."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str = "/chat", headers: tuple = ()) -> "Socket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n")
        writer.write(request.encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head[:80])
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    async def send(self, obj) -> None:
        self.writer.write(self._frame(1, json.dumps(obj).encode()))
        await self.writer.drain()

    async def recv(self) -> dict:
        while True:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n)
            opcode = b0 & 0x0F
            if opcode == 9:  # ping → pong
                self.writer.write(self._frame(10, payload))
                continue
            if opcode == 8:
                raise ConnectionError("closed")
            if opcode == 1:
                return json.loads(payload)


async def idle_connections(port: int, count: int, pid: int) -> dict:
    warm = await Socket.connect(port)
    await warm.send({"type": "hello", "v": 1})
    await warm.recv()
    warm.writer.close()
    await asyncio.sleep(2)
    before = rss_kib(pid)
    sockets: list[Socket] = []
    semaphore = asyncio.Semaphore(200)

    async def one():
        async with semaphore:
            s = await Socket.connect(port)
            await s.send({"type": "hello", "v": 1})
            frame = await s.recv()
            assert frame["type"] == "welcome", frame
            sockets.append(s)

    started = time.time()
    await asyncio.gather(*(one() for _ in range(count)))
    opened = time.time() - started

    async def keep(s: Socket):  # answer pings, as a browser does
        try:
            while True:
                await s.recv()
        except Exception:
            pass

    keepers = [asyncio.create_task(keep(s)) for s in sockets]
    await asyncio.sleep(10)
    after = rss_kib(pid)
    for s in sockets:
        s.writer.close()
    for k in keepers:
        k.cancel()
    return {"connections": len(sockets), "open_seconds": round(opened, 1), "rss_before_mib": round(before / 1024, 1),
            "rss_after_mib": round(after / 1024, 1), "kib_per_connection": round((after - before) / len(sockets), 1)}


async def latency(daemon: Daemon, rate: float, seconds: float) -> dict:
    agent = daemon.add_agent(role="admin")
    events = websocket.create_connection(daemon.url.replace("http", "ws") + "/api/v1/events",
                                         header={"Authorization": "Bearer " + agent["token"]}, timeout=60)
    events.recv()  # hello
    conversation_of: dict[str, int] = {}
    in_flight: dict[int, float] = {}
    delivered: list[float] = []
    lock = threading.Lock()
    pending_first: list[int] = []

    def reader():
        while True:
            try:
                frame = json.loads(events.recv())
            except Exception:
                return
            if frame.get("kind") != "message.created" or frame["data"].get("direction") != "inbound":
                continue
            now = time.time()
            conversation = frame["data"]["conversation_id"]
            with lock:
                patient = conversation_of.get(conversation)
                if patient is None and pending_first:
                    patient = pending_first.pop(0)
                    conversation_of[conversation] = patient
                if patient is not None and patient in in_flight:
                    delivered.append(now - in_flight.pop(patient))

    threading.Thread(target=reader, daemon=True).start()
    patients = []
    for i in range(PATIENTS):
        s = await Socket.connect(daemon.port)
        await s.send({"type": "hello", "v": 1})
        await s.recv()
        patients.append(s)
    acks: list[float] = []

    async def send(i: int, text: str):
        started = time.time()
        with lock:
            in_flight[i] = started
        await patients[i].send({"type": "message", "client_id": os.urandom(8).hex(), "text": text})
        while True:
            frame = await patients[i].recv()
            if frame["type"] == "ack":
                acks.append(time.time() - started)
                return

    # First message of each patient, one at a time: maps conversations to patients.
    for i in range(PATIENTS):
        with lock:
            pending_first.append(i)
        await send(i, f"first message {i}")
        while True:
            with lock:
                if i not in in_flight:
                    break
            await asyncio.sleep(0.005)
    delivered.clear()
    acks.clear()
    interval = 1 / rate
    total = int(rate * seconds)
    tasks = []
    next_at = time.time()
    sent = 0
    for n in range(total):
        i = n % PATIENTS
        while True:
            with lock:
                free = i not in in_flight
            if free:
                break
            await asyncio.sleep(0.001)
        delay = next_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, f"message {n} from patient {i}")))
        sent += 1
        next_at += interval
    await asyncio.gather(*tasks)
    deadline = time.time() + 10
    while len(delivered) < sent and time.time() < deadline:
        await asyncio.sleep(0.05)
    events.close()
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {"rate_per_s": rate, "messages": sent, "delivered": len(delivered),
            "ack_p50_ms": ms(percentile(acks, 0.5)), "ack_p99_ms": ms(percentile(acks, 0.99)),
            "agent_p50_ms": ms(percentile(delivered, 0.5)), "agent_p99_ms": ms(percentile(delivered, 0.99)),
            "agent_max_ms": ms(max(delivered))}


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp), overrides={"log": {"level": "warning"},
                                              "chat": {"max_connections": CONNECTIONS + 1000, "message_burst": 1000,
                                                       "messages_per_minute": 10000}})
        daemon.start()
        try:
            memory = asyncio.run(idle_connections(daemon.port, CONNECTIONS, daemon.proc.pid))
            print("chat idle connections:", json.dumps(memory))
            result = asyncio.run(latency(daemon, RATE, SECONDS))
            print("chat patient → agent:", json.dumps(result))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
