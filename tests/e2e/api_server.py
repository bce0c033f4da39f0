"""A local stand-in for the APIs the API kinds read: answers from a test's function, every request logged."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default=0.0)  # time.monotonic() when it arrived


# (status, headers, body)
Answer = tuple[int, dict[str, str], bytes]


class ApiServer:
    """Serves `answer(request)` on 127.0.0.1 at an OS-assigned port; `requests` is the log. A context manager."""

    def __init__(self, answer: Callable[[ApiRequest], Answer]) -> None:
        self.answer = answer
        self._lock = threading.Lock()
        self._requests: list[ApiRequest] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = ApiRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                     self.rfile.read(length), time.monotonic())
                with server._lock:
                    server._requests.append(request)
                status, headers, body = server.answer(request)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._requests)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
