"""HostileSite: a small local HTTP server for hostile answers (huge, bombs, redirect loops, endless paging) in e2e tests."""
from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MiB = 1024 * 1024


@dataclass
class Answer:
    """One answer: `body` is bytes, or a callable making the body's chunks (streamed, never held whole)."""

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # Content-Length for a streamed body; None: close-delimited

    @classmethod
    def html(cls, text: str | bytes, **headers: str) -> Answer:
        body = text.encode("utf-8") if isinstance(text, str) else text
        return cls(200, body, {"Content-Type": "text/html; charset=utf-8", **headers})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Answer:
        return cls(status, b"", {"Location": location})

    @classmethod
    def hang_up(cls) -> Answer:
        """Close the connection without answering."""
        return cls(0)


def gzip_of_zeros(size: int) -> tuple[int, Callable[[], Iterator[bytes]]]:
    """(compressed length, chunk maker) of one gzip stream of `size` zero bytes (a whole number of MiB).

    Built from one compressed MiB repeated: a full flush resets the compressor, so every MiB after the first
    compresses to the same bytes. 1 GiB comes out at ~1 MB and is never held in memory, compressed or not.
    """
    count = size // MiB
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # the trailer (CRC, size) is written below, for all `count` MiB

    def chunks() -> Iterator[bytes]:
        yield first
        for _ in range(count - 1):
            yield repeated
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(zeros, crc)
        yield final_block + struct.pack("<II", crc, size & 0xFFFFFFFF)

    return len(first) + len(repeated) * (count - 1) + len(final_block) + 8, chunks


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a crawler hanging up on an oversized answer is the point of these tests, not a traceback


class HostileSite:
    """Serves `answers` (path incl. query → Answer) on 127.0.0.1 at an OS-assigned port; `dynamic(path)` answers the
    rest (None: 404). Requests are logged by path. Use as a context manager."""

    def __init__(self, dynamic: Callable[[str], Answer | None] | None = None) -> None:
        self.answers: dict[str, Answer] = {}
        self.dynamic = dynamic
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def requested(self, prefix: str = "/") -> list[str]:
        with self._lock:
            return [p for p in self.paths if p.startswith(prefix) and p != "/robots.txt"]

    def __enter__(self) -> HostileSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()

    def _answer_for(self, path: str) -> Answer | None:
        with self._lock:
            self.paths.append(path)
        answer = self.answers.get(path)
        if answer is None and self.dynamic is not None:
            answer = self.dynamic(path)
        return answer


def _handler_for(site: HostileSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            answer = site._answer_for(self.path) or Answer(404, b"not found\n", {"Content-Type": "text/plain"})
            if answer.status == 0:
                self.close_connection = True
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if isinstance(answer.body, bytes):
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                return
            if answer.length is not None:
                self.send_header("Content-Length", str(answer.length))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            for chunk in answer.body():
                self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass

    return Handler
