"""SiteServer: a real HTTP server on 127.0.0.1 serving generated pages, with conditional GET, faults and a request log."""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

__all__ = ["SiteServer", "LoggedRequest"]

_CONTENT_TYPES = {
    ".json": "application/json",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
}
_HTML = "text/html; charset=utf-8"


class _Logged(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]  # header names lower-cased
    status: int  # 0 when the connection was closed without an answer


class LoggedRequest(_Logged):
    """One request as the server saw it: still the 4-tuple callers unpack, plus `at` for spacing checks."""

    at: float = 0.0  # time.monotonic() when the request was read

    def __new__(cls, method: str, path: str, headers: dict[str, str], status: int, at: float = 0.0) -> LoggedRequest:
        self = super().__new__(cls, method, path, headers, status)
        self.at = at
        return self


@dataclass(slots=True)
class _Page:
    body: bytes
    content_type: str
    etag: str
    last_modified: float  # epoch seconds, whole


@dataclass(slots=True)
class _Fault:
    status: int | None  # None: close the connection without answering
    headers: dict[str, str]
    body: bytes
    remaining: int | None  # None: forever


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-answer (dropped or timed-out crawls) are normal here, not tracebacks


def _content_type(path: str) -> str:
    bare = path.split("?", 1)[0].lower()
    for suffix, content_type in _CONTENT_TYPES.items():
        if bare.endswith(suffix):
            return content_type
    return _HTML


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class SiteServer:
    """Serves `pages` (path incl. query → body) on 127.0.0.1 at an OS-assigned port, in a daemon thread.

    Use as a context manager (`with SiteServer(pages) as site: site.url`). Pages, faults and the log can be changed
    while it runs; every method is thread-safe.
    """

    def __init__(
        self,
        pages: dict[str, bytes] | None = None,
        robots_txt: str | None = None,
        cache_control: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self._pages: dict[str, _Page] = {}
        self._faults: dict[str, _Fault] = {}
        self._requests: list[LoggedRequest] = []
        self.cache_control = cache_control
        for path, body in (pages or {}).items():
            self.set_page(path, body)
        if robots_txt is not None:
            self.set_page("/robots.txt", robots_txt.encode("utf-8"))
        self._httpd = _QuietHTTPServer((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, path: str) -> str:
        return self.url + path

    def start(self) -> SiteServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="SiteServer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- content --------------------------------------------------------------------------------------

    def set_page(
        self,
        path: str,
        body: bytes | str,
        content_type: str | None = None,
        last_modified: datetime | None = None,
    ) -> None:
        """Serve `body` at `path`. Last-Modified is now (or `last_modified`), kept when the body is unchanged."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            old = self._pages.get(path)
            if last_modified is not None:
                stamp = float(int(last_modified.timestamp()))
            elif old is not None and old.body == body:
                stamp = old.last_modified
            else:
                stamp = float(int(time.time()))  # HTTP dates have whole seconds
            self._pages[path] = _Page(body, content_type or _content_type(path), _etag(body), stamp)

    def remove_page(self, path: str) -> None:
        with self._lock:
            self._pages.pop(path, None)

    def page(self, path: str) -> bytes | None:
        with self._lock:
            page = self._pages.get(path)
            return page.body if page else None

    def etag(self, path: str) -> str | None:
        with self._lock:
            page = self._pages.get(path)
            return page.etag if page else None

    # --- faults ---------------------------------------------------------------------------------------

    def set_status(
        self,
        path: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes | str = b"",
        times: int | None = None,
    ) -> None:
        """Answer `path` (or "*" for every path) with `status` for the next `times` requests (None: until cleared).

        E.g. `set_status(p, 503, {"Retry-After": "2"}, times=2)`; `set_status(p, 403, body=challenge_html)`.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            self._faults[path] = _Fault(status, dict(headers or {}), body, times)

    def close_all(self, times: int | None = None) -> None:
        """Drop every connection without answering (a site that resets connections) for `times` requests."""
        with self._lock:
            self._faults["*"] = _Fault(None, {}, b"", times)

    def clear_faults(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._faults.clear()
            else:
                self._faults.pop(path, None)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for key in (path, "*"):
                fault = self._faults.get(key)
                if fault is None:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[key]
                return fault
            return None

    # --- request log ----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None) -> int:
        """Requests received (all, or for exactly `path` incl. query)."""
        with self._lock:
            if path is None:
                return len(self._requests)
            return sum(1 for r in self._requests if r.path == path)

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def _log(self, method: str, path: str, headers: dict[str, str], status: int, at: float) -> None:
        with self._lock:
            self._requests.append(LoggedRequest(method, path, headers, status, at))

    def _lookup(self, path: str) -> _Page | None:
        with self._lock:
            return self._pages.get(path)


def _not_modified(page: _Page, headers: dict[str, str]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only without it."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or page.etag in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored, as the RFC says
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        return since.timestamp() >= page.last_modified
    return False


def _handler_for(site: SiteServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as crawlers expect
        disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would stall each keep-alive answer
        server_version = "repwatch-demo"
        sys_version = ""

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            at = time.monotonic()
            headers = {name.lower(): value for name, value in self.headers.items()}
            fault = site._take_fault(self.path)
            if fault is not None and fault.status is None:
                site._log(self.command, self.path, headers, 0, at)
                self.close_connection = True
                return
            if fault is not None:
                site._log(self.command, self.path, headers, fault.status, at)
                self._send(fault.status, {"Content-Type": _HTML, **fault.headers}, fault.body, send_body)
                return
            page = site._lookup(self.path)
            if page is None:
                site._log(self.command, self.path, headers, 404, at)
                self._send(404, {"Content-Type": "text/plain; charset=utf-8"}, b"not found\n", send_body)
                return
            validators = {"ETag": page.etag, "Last-Modified": formatdate(page.last_modified, usegmt=True)}
            if site.cache_control:
                validators["Cache-Control"] = site.cache_control
            if _not_modified(page, headers):
                site._log(self.command, self.path, headers, 304, at)
                self._send(304, validators, b"", send_body=False)
                return
            site._log(self.command, self.path, headers, 200, at)
            self._send(200, {"Content-Type": page.content_type, **validators}, page.body, send_body)

        def _send(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body and status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass  # quiet: tests and the benchmark would drown in one line per request

    return Handler
