"""Google Business Profile for the owner: authorise repwatch once (OAuth loopback), and post replies to reviews."""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Review, Source
from monitor.config import Config, ConfigError, SourceConfig
from monitor.service.pipeline import open_sessions
from monitor.service.work import MAX_NOTE, Actor, NoSuchReview, Outcome, set_status
from spiders.oauth import (
    StoredToken,
    TokenError,
    TokenRevoked,
    code_form,
    consent_url,
    google_token_path,
    load_token,
    read_token_answer,
    refresh_form,
    save_token,
)
from spiders.sites.google_business import GoogleBusinessOptions

KIND = "google_business"
HTTP_TIMEOUT = 30.0
REPLY_MAX_BYTES = 4096  # Google's limit on a reply's comment


class GoogleError(Exception):
    """Something the owner must know about Google: one line, no secrets."""


class CannotPost(GoogleError):
    """The review is on a site repwatch does not post to."""


# --- which source, which client -------------------------------------------------------------------------------


def google_source(config: Config, name: str | None = None) -> SourceConfig:
    """The google_business source named `name`, or the only (first) one; GoogleError when there is none."""
    if name is not None:
        try:
            _, source = config.source(name)
        except ConfigError as exc:
            raise GoogleError(exc.problems[0]) from None
        if source.kind != KIND:
            raise GoogleError(f"source {name!r} is a {source.kind} source, not {KIND}")
        return source
    found = [source for _, source in config.sources() if source.kind == KIND]
    if not found:
        raise GoogleError(f"no {KIND} source in the config: add one first (docs/sources.md, Google Business Profile)")
    return found[0]


def client_options(source: SourceConfig) -> GoogleBusinessOptions:
    options = GoogleBusinessOptions.model_validate(source.options)
    if not (options.client_id and options.client_secret):
        raise GoogleError(f"source {source.name!r}: options.client_id and options.client_secret are needed "
                          "(the owner's OAuth client, from the Google Cloud console)")
    return options


# --- tokens ---------------------------------------------------------------------------------------------------


def _post_token(options: GoogleBusinessOptions, form: dict[str, str], previous: StoredToken | None) -> StoredToken:
    try:
        answer = httpx.post(options.token_url, data=form, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise GoogleError(f"cannot reach the token endpoint {options.token_url}: {type(exc).__name__}") from None
    return read_token_answer(answer.status_code, answer.content, previous)


def refreshed_token(options: GoogleBusinessOptions, path: Path, token: StoredToken) -> StoredToken:
    """A new access token for the stored refresh token, stored; TokenRevoked when Google refuses the grant."""
    assert options.client_id and options.client_secret
    fresh = _post_token(options, refresh_form(options.client_id, options.client_secret, token.refresh_token), token)
    save_token(path, fresh)
    return fresh


@dataclass(frozen=True)
class Authorised:
    token_file: Path
    source: str


def authorise(config: Config, source_name: str | None, *, show: Callable[[str], None], port: int = 0,
              timeout: float = 300.0) -> Authorised:
    """The owner's consent, once: `show` is given the consent URL; Google sends the browser back to a server on
    127.0.0.1 with a code, exchanged (with the PKCE verifier) for the refresh token, stored 0600 under data_dir."""
    source = google_source(config, source_name)
    options = client_options(source)
    assert options.client_id and options.client_secret
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer: dict[str, str] = {}
    arrived = threading.Event()

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # the query holds the code: never logged
            pass

        def do_GET(self) -> None:
            query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
            if query.get("state") != state or not ("code" in query or "error" in query):
                self._page(400, "This is not the answer repwatch is waiting for.")
                return
            answer.update(query)
            self._page(200, "repwatch is authorised: you can close this tab." if "code" in query
                       else "Authorisation refused: nothing was stored.")
            arrived.set()

        def _page(self, status: int, text: str) -> None:
            body = f"<!doctype html><meta charset=utf-8><title>repwatch</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer(("127.0.0.1", port), Redirect)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        show(consent_url(options.auth_url, options.client_id, redirect_uri, state, challenge))
        if not arrived.wait(timeout):
            raise GoogleError(f"no answer from Google within {timeout:.0f} s: nothing stored; run it again")
    finally:
        server.shutdown()
        server.server_close()
    if "code" not in answer:
        raise GoogleError(f"Google did not authorise repwatch ({answer.get('error', 'no code')}): nothing stored")
    form = code_form(options.client_id, options.client_secret, answer["code"], redirect_uri, verifier)
    try:
        token = _post_token(options, form, None)
    except TokenError as exc:
        raise GoogleError(str(exc)) from None
    path = google_token_path(config.data_dir)
    save_token(path, token)
    return Authorised(path, source.name)


# --- replies --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyTarget:
    """The review a reply is for, as the confirmation shows it."""

    review_id: int
    source: str
    author: str | None
    rating: float | None
    body: str
    current_reply: str | None


@dataclass(frozen=True)
class PostedReply:
    review_id: int
    comment: str
    update_time: str | None


def reply_target(config: Config, review_id: int, *,
                 sessions: sessionmaker[Session] | None = None) -> ReplyTarget:
    """The review to answer; NoSuchReview, or CannotPost ("cannot post on SITE; answer at URL") for other sites."""
    sessions = sessions or open_sessions(config)
    with sessions() as session:
        review = session.get(Review, review_id)
        if review is None:
            raise NoSuchReview(f"no review with id {review_id}")
        source = review.source
        if source.kind != KIND:
            raise CannotPost(f"repwatch cannot post on {_site(source.kind, review.url)}; answer at {review.url}")
        return ReplyTarget(review.id, source.name, review.author, review.rating, review.body, review.reply_body)


def check_reply_text(text: str) -> str:
    """The reply as it will be posted; GoogleError when it is empty or over Google's limit."""
    text = text.strip()
    if not text:
        raise GoogleError("the reply is empty: nothing posted")
    if len(text.encode("utf-8")) > REPLY_MAX_BYTES:
        raise GoogleError(f"the reply is {len(text.encode('utf-8'))} bytes, over Google's {REPLY_MAX_BYTES}: "
                          "nothing posted")
    return text


def post_reply(config: Config, review_id: int, text: str, *,
               sessions: sessionmaker[Session] | None = None) -> PostedReply:
    """Post (or replace) the owner's reply to a google_business review (updateReply: PUT …/reviews/ID/reply).

    An expired access token is refreshed and the request sent once more; a revoked authorisation raises GoogleError
    and marks the source failing, as a crawl would.
    """
    sessions = sessions or open_sessions(config)
    target = reply_target(config, review_id, sessions=sessions)
    comment = check_reply_text(text)
    _, source_config = config.source(target.source)
    options = client_options(source_config)
    with sessions() as session:
        review = session.get(Review, review_id)
        assert review is not None
        reply_url = f"{review.source.url.split('?', 1)[0].rstrip('/')}/{review.external_id}/reply"
    path = google_token_path(config.data_dir)
    token = load_token(path)
    if token is None:
        raise GoogleError(f"not authorised with Google yet: run `repwatch auth google --source {target.source}`")
    try:
        if not token.usable():
            token = refreshed_token(options, path, token)
        answer = _put_reply(reply_url, token, comment)
        if answer.status_code == 401:
            token = refreshed_token(options, path, token)
            answer = _put_reply(reply_url, token, comment)
    except TokenRevoked as exc:
        _mark_failing(sessions, target.source, str(exc))
        raise GoogleError(str(exc)) from None
    except TokenError as exc:
        raise GoogleError(str(exc)) from None
    if answer.status_code != 200:
        raise GoogleError(f"Google did not take the reply (HTTP {answer.status_code}{_api_detail(answer)}): "
                          "nothing posted")
    data = _json(answer)
    return PostedReply(review_id, str(data.get("comment") or comment), data.get("updateTime"))


@dataclass(frozen=True)
class RecordedReply:
    posted: PostedReply
    outcome: Outcome  # the review (its incident) marked replied


def reply_and_record(config: Config, review_id: int, text: str, actor: Actor, *,
                     sessions: sessionmaker[Session] | None = None) -> RecordedReply:
    """Post the reply with post_reply and, once Google took it, record it: the review becomes `replied` (its
    incident too, as any status change; the time to the first reply recorded) and the trail says who posted what.
    When Google refuses, GoogleError and nothing recorded."""
    sessions = sessions or open_sessions(config)
    posted = post_reply(config, review_id, text, sessions=sessions)
    said = f"posted on Google as the business's public reply: {posted.comment}"
    if len(said) > MAX_NOTE:
        said = said[: MAX_NOTE - 1] + "…"
    outcome = set_status(sessions, review_id, "replied", actor, note=said)
    return RecordedReply(posted, outcome)


def _put_reply(url: str, token: StoredToken, comment: str) -> httpx.Response:
    try:
        return httpx.put(url, json={"comment": comment}, timeout=HTTP_TIMEOUT,
                         headers={"Authorization": f"Bearer {token.access_token}"})
    except httpx.HTTPError as exc:
        raise GoogleError(f"cannot reach the Business Profile API: {type(exc).__name__}: nothing posted") from None


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _api_detail(answer: httpx.Response) -> str:
    error = _json(answer).get("error")
    if not isinstance(error, dict):
        return ""
    return ", " + " ".join(str(error.get(key) or "") for key in ("status", "message")).strip()[:200]


def _mark_failing(sessions: sessionmaker[Session], source_name: str, reason: str) -> None:
    from sqlalchemy import select

    with sessions.begin() as session:
        source = session.scalars(select(Source).where(Source.name == source_name)).one_or_none()
        if source is not None:
            source.state, source.last_error = "failing", reason
            source.consecutive_failures += 1


def _site(kind: str, url: str) -> str:
    """How people call the site a review is on: a feed of mentions names the host of the review's own link."""
    from spiders.registry import load_spiders

    spider = load_spiders().get(kind)
    if spider is None:
        return kind
    if spider.many_sites:
        return urlsplit(url).hostname or url
    return spider.site_name or kind
