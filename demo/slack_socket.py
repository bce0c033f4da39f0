"""A local WebSocket server that speaks Slack's Socket Mode protocol: hello, interactive envelopes, acks, disconnect."""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455


class SocketModeServer:
    """ws://127.0.0.1:PORT/link/?ticket=N: each connection gets `hello`; `send_interactive` delivers an envelope to
    the newest connection; acknowledgements ({"envelope_id": …, "payload": …}) are kept; `disconnect()` asks the
    client to reconnect, as Slack does every few hours. Synchronise with the wait_* methods (no sleeps)."""

    def __init__(self, app_id: str = "A0REPWATCH") -> None:
        self.app_id = app_id
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._cond = threading.Condition()
        self._connections: list[socket.socket] = []
        self.connected = 0  # connections that completed the handshake, ever
        self.acks: dict[str, dict[str, Any]] = {}
        self.ack_order: list[str] = []
        self._ids = itertools.count(1)
        self._tickets = itertools.count(1)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="socket-mode", daemon=True)

    def start(self) -> SocketModeServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._cond:
            for conn in self._connections:
                try:
                    conn.close()
                except OSError:
                    pass
            self._connections.clear()
            self._cond.notify_all()

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_url(self) -> str:
        """What apps.connections.open answers: a fresh URL each time, as Slack's are."""
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket={next(self._tickets)}"

    # -- what a test does

    def wait_connected(self, count: int, timeout: float = 15) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.connected >= count and self._connections, timeout):
                raise TimeoutError(f"no Socket Mode connection #{count} within {timeout} s")

    def send(self, message: dict[str, Any]) -> None:
        with self._cond:
            conn = self._connections[-1]
        _send_frame(conn, 0x1, json.dumps(message).encode())

    def send_interactive(self, payload: dict[str, Any], *, envelope_id: str | None = None,
                         accepts_response_payload: bool = False) -> str:
        envelope_id = envelope_id or f"env-{next(self._ids)}"
        self.send({"envelope_id": envelope_id, "type": "interactive", "payload": payload,
                   "accepts_response_payload": accepts_response_payload})
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 15) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} not acknowledged within {timeout} s")
            return self.acks[envelope_id]

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's "please reconnect": the client opens a new connection (and we close the old one after)."""
        self.send({"type": "disconnect", "reason": reason, "debug_info": {"host": "local"}})

    # -- the protocol

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            headers = {}
            for line in request.split(b"\r\n")[1:]:
                if b":" in line:
                    name, value = line.split(b":", 1)
                    headers[name.strip().lower()] = value.strip()
            key = headers.get(b"sec-websocket-key", b"")
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            with self._cond:
                self._connections.append(conn)
                self.connected += 1
                number = self.connected
                self._cond.notify_all()
            _send_frame(conn, 0x1, json.dumps({"type": "hello", "num_connections": number,
                                               "debug_info": {"host": "local"},
                                               "connection_info": {"app_id": self.app_id}}).encode())
            reader = _Reader(conn)
            while True:
                opcode, data = reader.frame()
                if opcode == 0x8:
                    return
                if opcode == 0x9:
                    _send_frame(conn, 0xA, data)
                elif opcode == 0x1:
                    self._received(data)
        except (OSError, ConnectionError):
            return
        finally:
            with self._cond:
                if conn in self._connections:
                    self._connections.remove(conn)
                self._cond.notify_all()
            try:
                conn.close()
            except OSError:
                pass

    def _received(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
            with self._cond:
                self.acks.setdefault(message["envelope_id"], message)
                self.ack_order.append(message["envelope_id"])
                self._cond.notify_all()


class _Reader:
    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.buffer = b""

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        opcode, masked, length = first & 0x0F, second & 0x80, second & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._take(8))[0]
        mask = self._take(4) if masked else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._take(length)))
        return opcode, data


_send_lock = threading.Lock()


def _send_frame(conn: socket.socket, opcode: int, data: bytes) -> None:
    """A server frame: final, unmasked (one writer at a time: a pong must not land inside an envelope)."""
    header = bytes([0x80 | opcode])
    if len(data) < 126:
        header += bytes([len(data)])
    elif len(data) < 65536:
        header += bytes([126]) + struct.pack(">H", len(data))
    else:
        header += bytes([127]) + struct.pack(">Q", len(data))
    with _send_lock:
        conn.sendall(header + data)


def click_payload(message: dict[str, Any], action_id: str, *, user_id: str, user_name: str,
                  response_url: str) -> dict[str, Any]:
    """The block_actions payload Slack sends when somebody clicks the button `action_id` of a posted message
    (as the SlackReceiver recorded it: channel, ts, blocks)."""
    buttons = [e for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b.get("elements") or []]
    button = next(b for b in buttons if b.get("action_id") == action_id)
    return {
        "type": "block_actions", "api_app_id": "A0REPWATCH", "token": "legacy-verification-token",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T000"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                      "is_ephemeral": False},
        "trigger_id": f"{time.time():.0f}.738474920.8088930838d88f008e0",
        "team": {"id": "T000", "domain": "demo"}, "channel": {"id": message["channel"], "name": "reviews"},
        "message": {"ts": message["ts"], "blocks": message.get("blocks") or []},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "repwatch_work", "type": "button",
                     "text": button.get("text") or {"type": "plain_text", "text": "?"},
                     "value": button.get("value"), "action_ts": f"{time.time():.6f}"}],
    }
