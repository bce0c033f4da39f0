"""Local stand-ins the notifier tests send to: an HTTP receiver for webhook kinds and aiosmtpd for email."""
from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

TOKEN = "s3cr3t-T0KEN-abcdef123456"  # what a real webhook URL carries in its path
PASSWORD = "right-pass-8c41"  # the SMTP password authenticator() accepts, with the login "digest"


class Receiver:
    """An HTTP server on 127.0.0.1 (OS-assigned port) that records every POST and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._answers: deque[tuple[int, dict[str, str], bytes]] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    answer = receiver._answers.popleft() if receiver._answers else (204, {}, b"")
                status, headers, payload = answer
                if status == 0:  # stall: never answer until the receiver closes (client timeouts)
                    receiver._release.wait(30)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/webhooks/1234/{TOKEN}"

    def answer(self, status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = dict(headers or {})
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
        with self._lock:
            self._answers.append((status, headers, payload))

    def stall(self) -> None:
        with self._lock:
            self._answers.append((0, {}, b""))

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index]["body"].decode("utf-8"))


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, or answers with the reply it was given."""

    def __init__(self, *, data_reply: str | None = None, rcpt_reply: str | None = None, hang: bool = False):
        self.data_reply = data_reply
        self.rcpt_reply = rcpt_reply
        self.hang = hang
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        if self.hang:  # takes the whole message, never answers: the client times out after handing it over
            await asyncio.Event().wait()
        return self.data_reply or "250 Message accepted for delivery"


class LocalSMTP(Controller):
    """aiosmtpd on 127.0.0.1 at an OS-assigned port (its start-up probe connects to `port`, so learn it first)."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def authenticator(server, session, envelope, mechanism, auth_data):
    """aiosmtpd AUTH that takes the login "digest" with PASSWORD, and refuses anything else carelessly."""
    if isinstance(auth_data, LoginPassword) and auth_data.login == b"digest" and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True)
    # A careless server echoing the password back: it must not reach our error message.
    password = auth_data.password.decode() if isinstance(auth_data, LoginPassword) else "?"
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad credentials ({password})")
