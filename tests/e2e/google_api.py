"""A local stand-in for Google's OAuth token endpoint and the Business Profile API's reviews, as documented.

Token endpoint (POST /token, form): `authorization_code` (with PKCE) and `refresh_token` grants; a revoked refresh
token gets 400 `invalid_grant`. Reviews (GET /v4/accounts/A/locations/L/reviews): Bearer token required (401
UNAUTHENTICATED otherwise), `pageSize` and `pageToken`, `nextPageToken` on all but the last page. Replies
(PUT …/reviews/R/reply, JSON {"comment"}): stored and echoed with an updateTime. Faults: queued statuses (429 with or
without Retry-After) for the next requests to the reviews, and for the next replies.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_ID = "1234-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-client-secret"
LOCATION = "accounts/111/locations/222"
STARS = ("ONE", "TWO", "THREE", "FOUR", "FIVE")


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class GoogleState:
    reviews: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    valid_access: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)  # code → PKCE challenge
    faults: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    replies: dict[str, str] = field(default_factory=dict)
    reply_faults: deque[int] = field(default_factory=deque)  # statuses for the next replies (not stored)
    issued: int = 0
    calls: list[Call] = field(default_factory=list)


def review(n: int, stars: int, *, hours_ago: int, comment: str | None = None, reply: str | None = None) -> dict[str, Any]:
    """One review as the API returns it."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - hours_ago * 3600)) + ".123456789Z"
    item: dict[str, Any] = {
        "name": f"{LOCATION}/reviews/r{n:04d}",
        "reviewId": f"r{n:04d}",
        "reviewer": {"displayName": f"Reviewer {n}", "profilePhotoUrl": "https://example.invalid/p.png"},
        "starRating": STARS[stars - 1],
        "createTime": when,
        "updateTime": when,
    }
    if comment is not None:
        item["comment"] = comment
    if reply is not None:
        item["reviewReply"] = {"comment": reply, "updateTime": when}
    return item


class GoogleAPI:
    """`with GoogleAPI() as google:` serves on 127.0.0.1 (port 0); `google.url` is its base URL."""

    def __init__(self) -> None:
        self.state = GoogleState()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_PUT(self) -> None:
                api._handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.reviews_url = f"{self.url}/v4/{LOCATION}/reviews"

    def __enter__(self) -> GoogleAPI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests set up ---------------------------------------------------------------------------------------

    def grant(self, refresh_token: str = "1//refresh-token-A", access_token: str | None = None) -> None:
        with self.lock:
            self.state.refresh_tokens.add(refresh_token)
            if access_token:
                self.state.valid_access.add(access_token)

    def revoke(self) -> None:
        with self.lock:
            self.state.refresh_tokens.clear()
            self.state.valid_access.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.state.valid_access.clear()

    def fail_next(self, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        with self.lock:
            self.state.faults.extend([(status, headers or {})] * times)

    def fail_next_reply(self, status: int) -> None:
        """The next reply is refused with `status` (429 RESOURCE_EXHAUSTED, 403 PERMISSION_DENIED, …)."""
        with self.lock:
            self.state.reply_faults.append(status)

    def calls_to(self, part: str) -> list[Call]:
        with self.lock:
            return [c for c in self.state.calls if part in c.path]

    # --- the server ---------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        url = urlsplit(handler.path)
        with self.lock:
            status, headers, answer = self._answer(method, url.path, parse_qs(url.query), handler, body)
            self.state.calls.append(Call(method, handler.path, dict(handler.headers), body, status, time.monotonic()))
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, list[str]], handler: BaseHTTPRequestHandler,
                body: bytes) -> tuple[int, dict[str, str], Any]:
        state = self.state
        if method == "POST" and path == "/token":
            return self._token(parse_qs(body.decode()))
        if not path.startswith(f"/v4/{LOCATION}/reviews"):
            return 404, {}, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such resource"}}
        bearer = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
        if bearer not in state.valid_access:
            return 401, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}, {"error": {
                "code": 401, "status": "UNAUTHENTICATED",
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token."}}
        if method == "PUT" and path.endswith("/reply"):
            if state.reply_faults:
                status = state.reply_faults.popleft()
                name = {429: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(status, "INTERNAL")
                return status, {}, {"error": {"code": status, "status": name, "message": "Refused by the stand-in"}}
            review_id = path.split("/")[-2]
            comment = json.loads(body or b"{}").get("comment", "")
            state.replies[review_id] = comment
            return 200, {}, {"comment": comment, "updateTime": "2026-12-06T05:00:00.000Z"}
        if state.faults:
            status, headers = state.faults.popleft()
            return status, headers, {"error": {"code": status, "status": "RESOURCE_EXHAUSTED", "message": "Quota"}}
        size = min(int((query.get("pageSize") or ["50"])[0]), state.page_size)
        start = int((query.get("pageToken") or ["0"])[0].removeprefix("tok-") or 0)
        page = state.reviews[start:start + size]
        answer: dict[str, Any] = {"reviews": page, "averageRating": 3.5, "totalReviewCount": len(state.reviews)}
        if start + size < len(state.reviews):
            answer["nextPageToken"] = f"tok-{start + size}"
        return 200, {}, answer

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        state = self.state
        value = {key: values[0] for key, values in form.items()}
        if value.get("client_id") != CLIENT_ID or value.get("client_secret") != CLIENT_SECRET:
            return 401, {}, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        if value.get("grant_type") == "authorization_code":
            challenge = state.codes.pop(value.get("code", ""), None)
            verifier = value.get("code_verifier", "")
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge is None or challenge != expected:
                return 400, {}, {"error": "invalid_grant", "error_description": "Malformed auth code."}
            state.refresh_tokens.add("1//refresh-from-consent")
            return 200, {}, {**self._issue(), "refresh_token": "1//refresh-from-consent"}
        if value.get("grant_type") == "refresh_token":
            if value.get("refresh_token") not in state.refresh_tokens:
                return 400, {}, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            return 200, {}, self._issue()
        return 400, {}, {"error": "unsupported_grant_type"}

    def _issue(self) -> dict[str, Any]:
        self.state.issued += 1
        token = f"ya29.access-{self.state.issued}"
        self.state.valid_access.add(token)
        return {"access_token": token, "expires_in": 3599, "scope": "https://www.googleapis.com/auth/business.manage",
                "token_type": "Bearer"}
