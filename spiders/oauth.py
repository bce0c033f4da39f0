"""OAuth 2.0 tokens of API sources: the stored token file under data_dir, token requests and reading their answers."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from models.files import PRIVATE_FILE, private_dir

GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/business.manage"
GOOGLE_TOKEN_FILE = "google-oauth.json"
# An access token this close to its end is refreshed first rather than sent and refused.
EXPIRY_MARGIN = 60.0
REAUTHORISE = "run `repwatch auth google` again"


class TokenError(Exception):
    """The token endpoint did not give an access token; the message is one line and names no secret."""


class TokenRevoked(TokenError):
    """The refresh token is no longer valid (`invalid_grant`: revoked, expired or the password changed)."""


@dataclass
class StoredToken:
    """What the token file holds: the refresh token (kept), and the current access token with its end (epoch s)."""

    refresh_token: str
    access_token: str = ""
    expires_at: float = 0.0

    def usable(self, now: float | None = None) -> bool:
        return bool(self.access_token) and self.expires_at - EXPIRY_MARGIN > (time.time() if now is None else now)


def google_token_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / GOOGLE_TOKEN_FILE


def load_token(path: Path) -> StoredToken | None:
    """The stored token, or None when there is none (or it cannot be read as one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str) or not data["refresh_token"]:
        return None
    return StoredToken(
        refresh_token=data["refresh_token"],
        access_token=str(data.get("access_token") or ""),
        expires_at=float(data.get("expires_at") or 0.0),
    )


def save_token(path: Path, token: StoredToken) -> None:
    """Write the token file 0600, whole or not at all (a crawl and a reply may refresh at the same moment)."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(token), file)
    os.chmod(temporary, PRIVATE_FILE)
    os.replace(temporary, path)


def refresh_form(client_id: str, client_secret: str, refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }


def code_form(client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }


def consent_url(auth_url: str, client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    """The page where the owner lets repwatch manage the Business Profile (offline: a refresh token comes back)."""
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": GOOGLE_SCOPE,
        "access_type": "offline",
        "prompt": "consent",  # a refresh token every time, even when the owner had agreed before
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{auth_url}?{urlencode(query)}"


def read_token_answer(status: int, body: bytes, previous: StoredToken | None = None,
                      now: float | None = None) -> StoredToken:
    """The token endpoint's answer as the token to store; raises TokenRevoked / TokenError with a one-line reason."""
    try:
        data: Any = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if status == 200 and isinstance(data.get("access_token"), str) and data["access_token"]:
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else "")
        if not isinstance(refresh, str) or not refresh:
            raise TokenError(f"Google sent no refresh token: remove repwatch's access at "
                             f"https://myaccount.google.com/permissions and {REAUTHORISE}")
        try:
            lifetime = float(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return StoredToken(refresh, data["access_token"], (time.time() if now is None else now) + lifetime)
    error = str(data.get("error") or "")
    if error == "invalid_grant":
        raise TokenRevoked(f"Google refused the stored authorisation (invalid_grant: revoked or expired): {REAUTHORISE}")
    if error == "invalid_client":
        raise TokenError("Google refused the client id or secret (invalid_client): check the source's options")
    reason = f"{error}" if error.replace("_", "").isalpha() else f"HTTP {status}"
    raise TokenError(f"the token endpoint refused to give an access token ({reason})")
