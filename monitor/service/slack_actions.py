"""Slack's work-button clicks and draft modals → the team's work functions: parsed defensively, allowed, applied once.

How an action is never lost and never applied twice (Socket Mode and the HTTP request URL alike):

1. The payload is parsed into a `Click` (anything unexpected: a clear ephemeral answer, nothing changed).
2. Who clicked is checked against `slack_actions.allow`.
3. In ONE database transaction: the action's receipts are inserted (ActionReceipt: the Socket Mode envelope id and
   the action's own id, user + action_ts + action_id, or the modal's view id) and the work function runs inside
   it (a savepoint). A receipt that exists already means the action was applied: nothing more is done. Both
   commit together or not at all.
4. Only then is Slack acknowledged (the envelope id on the socket, or the HTTP 200). Applying is a few database
   rows (milliseconds); should the database take longer than ACK_DEADLINE, the listener acknowledges anyway so
   the clicker sees no error, and the transaction goes on (monitor/listener.py).
5. After the acknowledgement: the clicked alert is edited in place (chat.update), a modal is opened, or the
   clicker is told why nothing happened; the other alerts of the review follow through the outbox.

So: a crash before the commit applies nothing and acknowledges nothing (Slack shows the clicker an error; they
click again); a crash after the commit and before the acknowledgement leaves the action applied, and Slack's
redelivery finds its receipt; an acknowledged action is always committed (except past ACK_DEADLINE, see 4).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import AlertRefresh, DeliveryError
from alerts.slack import (
    ACTION_PREFIX,
    DRAFT_BLOCK_ID,
    DRAFT_CALLBACK_ID,
    DRAFT_INPUT_ID,
    SlackNotifier,
    build_draft_modal,
)
from models.db import sqlite_write_lock_first
from models.tables import ActionReceipt, Delivery
from models.textsafe import terminal_safe
from monitor.config import Config
from monitor.service.alerting import AlertBuilder, build_notifiers
from monitor.service.users import person_for_slack
from monitor.service.work import (
    Actor,
    NoSuchReview,
    Outcome,
    WorkError,
    assign,
    save_draft,
    set_status,
    snooze,
)

__all__ = ["Answer", "Click", "HttpAnswer", "Refused", "SlackActions", "parse_interaction"]

ACK_DEADLINE = 2.5  # seconds: Slack wants the acknowledgement within 3
SIGNATURE_MAX_AGE = 300  # seconds: an older signed request is refused (a replay)
MAX_BODY = 64 * 1024  # bytes: an interaction payload is a few KB
MEMBERS_TTL = 60.0  # seconds a channel's or user group's member list is trusted
RECEIPTS_KEPT = timedelta(days=30)
SNOOZE = timedelta(days=1)
WORK_ACTIONS = ("take", "replied", "resolved", "not_complaint", "snooze", "draft")
STATUS_OF = {"replied": "replied", "resolved": "resolved", "not_complaint": "not_complaint"}
DONE_WORDS = {"take": "took", "replied": "marked replied", "resolved": "marked resolved",
              "not_complaint": "marked not a complaint", "snooze": "snoozed for a day", "save_draft": "saved the draft of"}

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,39}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,39}")
_TS = re.compile(r"\d{1,12}\.\d{1,9}")
_VALUE = re.compile(r"(\d{1,12}):(\d{1,9})")
_ENVELOPE = re.compile(r"[A-Za-z0-9._-]{1,120}")
_VIEW_ID = re.compile(r"V[A-Z0-9]{2,39}")
_T = TypeVar("_T")


class Refused(Exception):
    """An interaction that cannot be acted on: the message says why, to the person who clicked."""


@dataclass(frozen=True)
class Click:
    """One button click or draft submission, as far as repwatch reads it."""

    action: str  # take / replied / resolved / not_complaint / snooze / draft (open the modal) / save_draft
    review_id: int
    seen_version: int | None
    user_id: str
    user_name: str
    receipts: tuple[str, ...]  # the dedupe keys: the action's own id (and the Socket Mode envelope's)
    channel: str | None = None  # where the alert is
    message_ts: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    draft: str | None = None  # save_draft: the text


@dataclass
class Answer:
    """What to acknowledge Slack with, and what to do right after the acknowledgement."""

    ack: dict[str, Any] | None = None  # the acknowledgement's payload (view_submission errors); None: empty
    then: Callable[[], None] = lambda: None
    summary: str = ""  # one log line (terminal-safe), "" for nothing worth logging


@dataclass(frozen=True)
class HttpAnswer:
    """The request URL's answer: the HTTP status and body, and what to run after it was sent (`then`)."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    then: Callable[[], None] = field(default=lambda: None)


# --- parsing -----------------------------------------------------------------------------------------------


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _user(payload: Mapping[str, Any]) -> tuple[str, str]:
    user = payload.get("user")
    if not isinstance(user, Mapping):
        raise Refused("this interaction names nobody")
    user_id = user.get("id")
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise Refused("this interaction names nobody repwatch can read")
    name = _text(user.get("username"), 200) or _text(user.get("name"), 200) or user_id
    name = re.sub(r"\s+", " ", terminal_safe(name)).strip()[:100] or user_id
    return user_id, name


def parse_interaction(payload: Any, *, envelope_id: str | None = None) -> Click | None:
    """A Slack interaction payload (block_actions, view_submission) → a Click; None for what repwatch ignores
    (the "Open review" link button, other apps' payloads); Refused for what it cannot act on."""
    if not isinstance(payload, Mapping):
        raise Refused("an interaction repwatch cannot read")
    kind = payload.get("type")
    receipts: list[str] = []
    if envelope_id is not None:
        if not _ENVELOPE.fullmatch(envelope_id):
            raise Refused("an interaction repwatch cannot read")
        receipts.append(f"slack:envelope:{envelope_id}")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
            raise Refused("a click without an action")
        action = actions[0]
        action_id = action.get("action_id")
        if action_id == "open_review":
            return None  # a link button: Slack opens it, repwatch has nothing to do
        if not isinstance(action_id, str) or not action_id.startswith(ACTION_PREFIX) \
                or action_id[len(ACTION_PREFIX):] not in WORK_ACTIONS:
            raise Refused("an unknown button (from an older or another app?): nothing changed")
        value = action.get("value")
        match = _VALUE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise Refused("this button carries no review repwatch can read: nothing changed")
        action_ts = action.get("action_ts")
        if not isinstance(action_ts, str) or not _TS.fullmatch(action_ts):
            raise Refused("a click without its time: nothing changed")
        user_id, name = _user(payload)
        receipts.append(f"slack:action:{user_id}:{action_ts}:{action_id}")
        container = _mapping(payload.get("container"))
        channel_obj = _mapping(payload.get("channel"))
        channel = container.get("channel_id") or channel_obj.get("id")
        message_ts = container.get("message_ts")
        return Click(
            action=action_id[len(ACTION_PREFIX):], review_id=int(match[1]), seen_version=int(match[2]),
            user_id=user_id, user_name=name, receipts=tuple(receipts),
            channel=channel if isinstance(channel, str) and _CHANNEL_ID.fullmatch(channel) else None,
            message_ts=message_ts if isinstance(message_ts, str) and _TS.fullmatch(message_ts) else None,
            response_url=_text(payload.get("response_url"), 500), trigger_id=_text(payload.get("trigger_id"), 200),
        )
    if kind == "view_submission":
        view = payload.get("view")
        if not isinstance(view, Mapping) or view.get("callback_id") != DRAFT_CALLBACK_ID:
            return None  # not our modal
        view_id = view.get("id")
        if not isinstance(view_id, str) or not _VIEW_ID.fullmatch(view_id):
            raise Refused("a modal repwatch cannot read")
        try:
            meta = json.loads(view.get("private_metadata") or "")
            review_id, version = int(meta["r"]), int(meta["v"])
        except (ValueError, TypeError, KeyError):
            raise Refused("this draft names no review repwatch can read: nothing saved") from None
        if not (0 < review_id < 10**12 and 0 <= version < 10**9):
            raise Refused("this draft names no review repwatch can read: nothing saved")
        try:
            draft = view["state"]["values"][DRAFT_BLOCK_ID][DRAFT_INPUT_ID]["value"]
        except (KeyError, TypeError):
            draft = None
        if draft is not None and not isinstance(draft, str):
            raise Refused("the draft is not text: nothing saved")
        user_id, name = _user(payload)
        receipts.append(f"slack:view:{view_id}")
        channel, message_ts = meta.get("c"), meta.get("t")
        return Click(
            action="save_draft", review_id=review_id, seen_version=version, user_id=user_id, user_name=name,
            receipts=tuple(receipts), draft=draft or "",
            channel=channel if isinstance(channel, str) and _CHANNEL_ID.fullmatch(channel) else None,
            message_ts=message_ts if isinstance(message_ts, str) and _TS.fullmatch(message_ts) else None,
        )
    return None  # shortcuts, view_closed, other apps' payloads: acknowledged, nothing to do


# --- the handler ---------------------------------------------------------------------------------------------


class SlackActions:
    """Answers the work buttons of one config: who may act, the work functions, the alert edited in place."""

    def __init__(self, config: Config, sessions: sessionmaker[Session], *, notifier: SlackNotifier | None = None,
                 log: Callable[[str], None] = lambda line: None, wake_outbox: Callable[[], None] = lambda: None):
        settings = config.slack_actions
        if settings is None:
            raise WorkError("no slack_actions: section in the config")
        self.config = config
        self.settings = settings
        self.sessions = sessions
        self.notifier_name = config.slack_actions_notifier() or ""
        if notifier is None:
            built = build_notifiers(config)[self.notifier_name]
            assert isinstance(built, SlackNotifier)
            notifier = built
        self.notifier = notifier
        self.log = log
        self.wake_outbox = wake_outbox
        self.alerts = AlertBuilder(config)
        self._members: dict[str, tuple[float, set[str]]] = {}
        self._members_lock = threading.Lock()
        api = urlsplit(notifier.config.api_url)
        self._response_hosts = {("https", "hooks.slack.com", None), (api.scheme, api.hostname, api.port)}

    # -- Socket Mode and HTTP share this

    def handle(self, payload: Any, *, envelope_id: str | None = None) -> Answer:
        """Parse, allow, apply once: what to acknowledge with and what to do after. Never raises for bad input."""
        try:
            click = parse_interaction(payload, envelope_id=envelope_id)
        except Refused as refused:
            return self._refusal(payload, str(refused))
        if click is None:
            return Answer()
        try:
            actor = self._actor(click)
            outcome = self._apply_once(click, actor)
        except (Refused, WorkError, NoSuchReview) as refused:
            reason = str(refused).replace("(see `repwatch reviews`)", "").strip()
            return self._refusal(payload, reason, click)
        except DeliveryError as error:  # asking Slack who is allowed failed
            return self._refusal(payload, f"repwatch could not check who may act ({error}); try again", click)
        if outcome is None:
            return Answer(summary=f"slack: review #{click.review_id}: {click.action} by {click.user_name} "
                                  "delivered again, already applied")
        done = DONE_WORDS.get(click.action, click.action)
        summary = f"slack: {actor.name} {done} review #{click.review_id}" if click.action != "draft" else ""
        if isinstance(outcome, Outcome) and outcome.stale:
            summary += " (on an older view of it)"
        return Answer(then=lambda: self._after(click, outcome), summary=terminal_safe(summary))

    def _actor(self, click: Click) -> Actor:
        person = person_for_slack(self.sessions, click.user_id)
        allow = self.settings.allow
        if allow == "mapped_users" and person is None:
            raise Refused("only people linked to repwatch may act here (`repwatch users link NAME "
                          f"{click.user_id}`): nothing changed")
        if allow == "channel_members":
            if click.channel is None or click.user_id not in self._cached(
                    f"channel:{click.channel}", lambda: self.notifier.channel_members(str(click.channel))):
                raise Refused("only members of the alert's channel may act on it: nothing changed")
        if allow == "user_group":
            group = str(self.settings.user_group)
            if click.user_id not in self._cached(f"group:{group}", lambda: self.notifier.group_members(group)):
                raise Refused("only members of the team's Slack user group may act here: nothing changed")
        return Actor(person.name if person is not None else click.user_name, "slack")

    def _cached(self, key: str, fetch: Callable[[], set[str]]) -> set[str]:
        now = time.monotonic()
        with self._members_lock:
            cached = self._members.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        members = fetch()
        with self._members_lock:
            self._members[key] = (now + MEMBERS_TTL, members)
        return members

    def _apply_once(self, click: Click, actor: Actor) -> Outcome | bool | None:
        """The receipts and the action in one transaction; None when a receipt existed (applied before)."""
        engine = self.sessions.kw["bind"]
        assert isinstance(engine, Engine)
        with engine.connect() as connection:
            sqlite_write_lock_first(connection)  # SQLite: one writer from the start, no upgrade deadlock
            with connection.begin_nested() if connection.in_transaction() else connection.begin() as transaction:
                dialect = connection.dialect.name
                insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
                added = connection.execute(
                    insert(ActionReceipt).on_conflict_do_nothing(index_elements=["key"]).returning(ActionReceipt.key),
                    [{"key": _key(k), "received_at": datetime.now(UTC)} for k in click.receipts],
                ).all()
                if len(added) < len(click.receipts):
                    transaction.rollback()
                    return None
                joined = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
                outcome = self._apply(joined, click, actor)
            connection.commit()
            return outcome

    def _apply(self, sessions: sessionmaker[Session], click: Click, actor: Actor) -> Outcome | bool:
        seen = click.seen_version
        if click.action == "take":
            return assign(sessions, click.review_id, actor, seen_version=seen)
        if click.action in STATUS_OF:
            return set_status(sessions, click.review_id, STATUS_OF[click.action], actor, seen_version=seen)
        if click.action == "snooze":
            return snooze(sessions, click.review_id, SNOOZE, actor)
        if click.action == "save_draft":
            return save_draft(sessions, click.review_id, click.draft or "", actor, seen_version=seen)
        with sessions() as session:  # "draft": only opens the modal; the review must exist
            if not self.alerts.alerts(session, [click.review_id]):
                raise NoSuchReview(f"no review #{click.review_id}")
        return True

    # -- after the acknowledgement

    def _after(self, click: Click, outcome: Outcome | bool) -> None:
        try:
            if click.action == "draft":
                self._open_draft(click)
                return
            assert isinstance(outcome, Outcome)
            self.edit_clicked(click)
            if outcome.stale:
                self._tell(click, f"Done, but review #{click.review_id} had changed since this message was "
                                  "posted: the message now shows it as it is.")
            if outcome.updates_queued:
                self.wake_outbox()
        except DeliveryError as error:
            self.log(terminal_safe(f"slack: review #{click.review_id}: could not answer in Slack: {error}"))

    def edit_clicked(self, click: Click) -> bool:
        """Edit the alert message that was clicked (only a message repwatch sent about this review), and count its
        queued refreshes as sent; other messages of the review follow through the outbox. False: none to edit."""
        if click.channel is None or click.message_ts is None:
            return False
        remote_id = f"{click.channel}/{click.message_ts}"
        with self.sessions.begin() as session:
            parent = session.scalar(select(Delivery).where(
                Delivery.remote_id == remote_id, Delivery.kind == "alert", Delivery.destination == self.notifier_name,
                Delivery.review_id == click.review_id))
            if parent is None:
                return False
            alert = self.alerts.alerts(session, [click.review_id]).get(click.review_id)
            if alert is None:
                return False
            pending = list(session.scalars(select(Delivery.id).where(
                Delivery.parent_id == parent.id, Delivery.kind == "refresh", Delivery.status == "pending")))
        self.notifier.refresh(AlertRefresh(alert=alert, original=remote_id))
        if pending:
            with self.sessions.begin() as session:
                session.execute(update(Delivery).where(Delivery.id.in_(pending), Delivery.status == "pending")
                                .values(status="sent", sent_at=datetime.now(UTC), remote_id=remote_id))
        return True

    def _open_draft(self, click: Click) -> None:
        with self.sessions() as session:
            alert = self.alerts.alerts(session, [click.review_id]).get(click.review_id)
        if alert is None or click.trigger_id is None:
            self._tell(click, f"Review #{click.review_id} cannot be edited from here.")
            return
        meta = json.dumps({"r": click.review_id, "v": alert.work_version, "c": click.channel, "t": click.message_ts})
        self.notifier.open_view(click.trigger_id, build_draft_modal(alert, private_metadata=meta))

    # -- refusals

    def _refusal(self, payload: Any, reason: str, click: Click | None = None) -> Answer:
        text = f"repwatch: {reason}"
        summary = terminal_safe(f"slack: refused: {reason}")
        if isinstance(payload, Mapping) and payload.get("type") == "view_submission":
            return Answer(ack={"response_action": "errors", "errors": {DRAFT_BLOCK_ID: text[:150]}}, summary=summary)
        target = click or _reply_target(payload)
        if target is None:
            return Answer(summary=summary)
        return Answer(then=lambda: self._tell_safely(target, text), summary=summary)

    def _tell_safely(self, click: Click, text: str) -> None:
        try:
            self._tell(click, text)
        except DeliveryError as error:
            self.log(terminal_safe(f"slack: could not answer {click.user_name}: {error}"))

    def _tell(self, click: Click, text: str) -> None:
        """An ephemeral answer to the clicker: through the click's response_url when it is Slack's, else
        chat.postEphemeral in the alert's channel."""
        url = click.response_url
        if url is not None:
            parts = urlsplit(url)
            if (parts.scheme, parts.hostname, parts.port) in self._response_hosts:
                self.notifier.respond(url, text)
                return
        if click.channel is not None:
            self.notifier.ephemeral(click.channel, click.user_id, text)

    # -- the HTTP request URL

    def handle_http(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> HttpAnswer:
        """A request to POST /slack/actions: verified with the signing secret (older than 5 minutes or seen before:
        refused), then handled like a Socket Mode envelope. Run `then` after the answer is sent."""
        secret = self.settings.signing_secret
        if secret is None:
            return HttpAnswer(404, b"slack_actions.signing_secret is not set\n")
        if len(body) > MAX_BODY:
            return HttpAnswer(413, b"too large\n")
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp, signature = lowered.get("x-slack-request-timestamp", ""), lowered.get("x-slack-signature", "")
        clock = time.time() if now is None else now
        if not timestamp.isdigit() or abs(clock - int(timestamp)) > SIGNATURE_MAX_AGE:
            return HttpAnswer(401, b"stale or missing timestamp\n")
        verifier = SignatureVerifier(secret.get_secret_value().strip(), clock=_FixedClock(clock))
        if not verifier.is_valid(body, timestamp, signature):
            return HttpAnswer(401, b"bad signature\n")
        if not self._first_time(f"slack:signature:{signature}"):
            return HttpAnswer(401, b"replayed request\n")
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            payload = json.loads(form["payload"][-1])
        except (UnicodeDecodeError, ValueError, KeyError, IndexError):
            return HttpAnswer(400, b"no payload\n")
        answer = self.handle(payload)
        if answer.summary:
            self.log(answer.summary)
        if answer.ack is not None:
            return HttpAnswer(200, json.dumps(answer.ack).encode(), "application/json", answer.then)
        return HttpAnswer(200, b"", then=answer.then)

    def _first_time(self, key: str) -> bool:
        dialect = self.sessions.kw["bind"].dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        with self.sessions.begin() as session:
            return bool(session.execute(
                insert(ActionReceipt).on_conflict_do_nothing(index_elements=["key"]).returning(ActionReceipt.key),
                [{"key": _key(key), "received_at": datetime.now(UTC)}]).all())

    def prune_receipts(self, older_than: timedelta = RECEIPTS_KEPT) -> int:
        """Forget receipts older than Slack could ever redeliver (kept a month)."""
        with self.sessions.begin() as session:
            result = session.execute(delete(ActionReceipt).where(ActionReceipt.received_at < datetime.now(UTC) - older_than))
            return int(getattr(result, "rowcount", 0) or 0)

    def starlette_endpoint(self) -> Callable[[Any], Any]:
        """POST /slack/actions for `repwatch web` (Starlette): app.add_route("/slack/actions", endpoint, ["POST"])."""
        # the web app's dependency: imported only when `repwatch web` mounts the route
        from starlette.background import BackgroundTask
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        async def endpoint(request: Any) -> Any:
            body = await request.body()
            answer = await run_in_threadpool(self.handle_http, body, dict(request.headers))
            return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                            background=BackgroundTask(run_in_threadpool, answer.then))

        return endpoint


class _FixedClock(Clock):
    def __init__(self, now: float):
        self._now = now

    def now(self) -> float:
        return self._now


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _key(key: str) -> str:
    """A receipt key within the column's 200 characters (a long one is hashed)."""
    return key if len(key) <= 200 else key[:130] + ":" + hashlib.sha256(key.encode()).hexdigest()


def _reply_target(payload: Any) -> Click | None:
    """Who to tell, for a payload too broken to become a Click: its user and response_url or channel, if readable."""
    if not isinstance(payload, Mapping):
        return None
    try:
        user_id, name = _user(payload)
    except Refused:
        return None
    channel = _mapping(payload.get("container")).get("channel_id")
    return Click(action="none", review_id=0, seen_version=None, user_id=user_id, user_name=name, receipts=(),
                 channel=channel if isinstance(channel, str) and _CHANNEL_ID.fullmatch(channel) else None,
                 response_url=_text(payload.get("response_url"), 500))
