"""The inbox's locks: signed session cookies, CSRF tokens, the login throttle, trusted proxies, safe redirects."""
from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from models.files import private_dir, private_opener

COOKIE = "repwatch_session"
SECRET_FILE = "web-secret"
MAX_FLASH = 1500  # characters: the cookie stays well under the browsers' 4 KB


def secret_key(configured: str | None, data_dir: Path) -> str:
    """The key that signs the cookies: the configured one, or one generated once into data_dir/web-secret (0600),
    so that a restart keeps everybody logged in."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= 32:
        return existing
    private_dir(data_dir)
    fresh = secrets.token_hex(32)
    temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}.new")
    with open(temporary, "w", encoding="ascii", opener=private_opener) as out:
        out.write(fresh + "\n")
    try:
        os.link(temporary, path)  # two processes starting at once: the first one's key wins, both use it
    except FileExistsError:
        fresh = path.read_text(encoding="ascii").strip()
    finally:
        temporary.unlink(missing_ok=True)
    return fresh


@dataclass
class WebSession:
    """What the cookie carries: who (user id and the password epoch it was issued under), the CSRF token, when it
    was issued, and a message for the next page."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # also the session's id (logout)
    user_id: int | None = None
    epoch: int = 0
    issued: float = 0.0  # POSIX seconds
    flash: list[str] = field(default_factory=list)
    changed: bool = False  # set a fresh cookie on the response

    def as_payload(self) -> dict[str, Any]:
        return {"c": self.csrf, "u": self.user_id, "e": self.epoch, "i": self.issued, "f": self.flash}

    def say(self, message: str) -> None:
        self.flash.append(message[:MAX_FLASH])
        self.changed = True

    def take_flash(self) -> list[str]:
        messages, self.flash = self.flash, []
        if messages:
            self.changed = True
        return messages

    def csrf_ok(self, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.csrf.encode())


class CookieCodec:
    """Session ⇄ cookie value, signed with the secret key (itsdangerous); a tampered, foreign or expired cookie reads
    as a fresh anonymous session."""

    def __init__(self, key: str, lifetime: timedelta):
        self.serializer = URLSafeSerializer(key, salt="repwatch-web-session")
        self.lifetime = lifetime

    def dumps(self, session: WebSession) -> str:
        return str(self.serializer.dumps(session.as_payload()))

    def loads(self, value: str | None, now: datetime) -> WebSession:
        if not value:
            return WebSession(changed=True)
        try:
            payload = self.serializer.loads(value)
            session = WebSession(csrf=str(payload["c"]), user_id=payload["u"], epoch=int(payload["e"]),
                                 issued=float(payload["i"]), flash=[str(m) for m in payload["f"]][:5])
        except (BadSignature, KeyError, TypeError, ValueError):
            return WebSession(changed=True)
        if session.user_id is not None and now.timestamp() - session.issued > self.lifetime.total_seconds():
            return WebSession(changed=True)  # expired: logged out, and a new CSRF token for the login form
        return session


class LoginThrottle:
    """Failed logins per user name and per address: after `limit` failures within `window` the next attempt is
    refused without checking the password, until the oldest failure is older than the window. In memory: a restart
    forgets it, which costs a guesser a restart per five tries."""

    def __init__(self, clock: Callable[[], datetime], *, limit: int = 5, window: timedelta = timedelta(minutes=15),
                 max_keys: int = 100_000):
        self.clock = clock
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(name: str, address: str) -> tuple[str, str]:
        return f"user:{name.strip().casefold()}", f"addr:{address}"

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def wait(self, name: str, address: str) -> timedelta | None:
        """How long until this name and address may try again; None when they may now."""
        now = self.clock()
        with self._lock:
            waits = [times[0] + self.window - now for key in self.keys(name, address)
                     if len(times := self._recent(key, now)) >= self.limit]
        return max(waits) if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_keys:  # a flood of names: drop what is past its window
                for key in list(self._failures):
                    self._recent(key, now)
            for key in self.keys(name, address):
                self._failures.setdefault(key, deque(maxlen=self.limit)).append(now)

    def succeeded(self, name: str) -> None:
        """The name's failures are forgiven; the address's are not (one good account must not reset a guesser)."""
        with self._lock:
            self._failures.pop(self.keys(name, "")[0], None)


class Proxies:
    """The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (none unless configured)."""

    def __init__(self, networks: Iterable[str]):
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The visitor's address: the peer, or, behind trusted proxies, the nearest address in X-Forwarded-For that
        is not one of them (the ones further left could be written by the visitor)."""
        address = peer or "unknown"
        if not self.trusted(peer):
            return address
        for hop in reversed([h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]):
            address = hop
            if not self.trusted(hop):
                break
        return address

    def scheme(self, peer: str | None, scheme: str, headers: Mapping[str, str]) -> str:
        if self.trusted(peer):
            forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            if forwarded in ("http", "https"):
                return forwarded
        return scheme


def local_path(target: str | None, default: str = "/") -> str:
    """`next=` after login: a path on this site only (never //host, a scheme, or a backslash trick)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in target):
        return default
    return target


def web_url(url: str | None) -> str | None:
    """A review's link as stored by the crawl, if it is an http(s) URL (a javascript: link is never rendered)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None
