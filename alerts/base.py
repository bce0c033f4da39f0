"""The notifier contract: Alert in, SendResult or DeliveryError out, and the registry of notifiers by `kind`."""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from models.vocab import plugin_key

# Who a message pings, in Slack's syntax (other notifiers ignore it): one or more of these.
MENTIONS = re.compile(r"(?:<(?:!here|!channel|!everyone|@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)>\s*)+")

# kind -> notifier class; filled by Notifier.__init_subclass__
NOTIFIERS: dict[str, type[Notifier]] = {}
Message = TypeVar("Message")  # what a destination sends: a JSON body, a Block Kit message, an email


@dataclass(frozen=True)
class Topic:
    """A complaint topic found in a review's text."""

    name: str  # e.g. "delivery" (built-in, or config.yaml's `topics:` key)
    title: str  # as shown, e.g. "Delivery"


@dataclass(frozen=True)
class Alert:
    """Everything a person needs to act on one review, finished: notifiers show it and look nothing up."""

    review_id: int
    business: str  # business name from config
    source: str  # config source name, e.g. "acme-trustpilot"
    site: str  # human site name, e.g. "Trustpilot" (may be the spider kind)
    url: str  # link to the review on the site (where the owner replies)
    body: str
    label: str  # "neg" | "neu" | "pos" | "mixed"
    severity: str  # "normal" | "high" | "critical"
    why: str  # why it fired, e.g. "1★ rating" or 'text negative: "never again, rude staff"'
    rating: float | None = None
    author: str | None = None
    title: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    score: float | None = None
    draft_reply: str | None = None
    topics: tuple[Topic, ...] = ()  # complaint topics found in the text, most hits first
    app_version: str | None = None  # app stores: the app's version the review was written on
    votes: int | None = None  # Reddit score, likes, points
    incident_id: int | None = None  # one complaint posted on several sites (monitor/service/incidents.py)
    also_posted_on: tuple[str, ...] = ()  # the incident's other posts' sites, first posted first
    # The team's work on it (monitor/service/work.py), shown on the alert and carried by its buttons.
    status: str = "new"  # models.vocab.REVIEW_STATUSES
    assignee: str | None = None
    status_changed_at: datetime | None = None
    work_version: int = 0  # the review's work_version when this alert was built: a click on an older one is stale


@dataclass(frozen=True)
class Target:
    """Where in the destination a message goes, as the route and the outbox decided."""

    channel: str | None = None  # the route's Slack channel instead of the notifier's own
    mention: str | None = None  # the route's ping (Slack syntax), instead of the notifier's critical-only one
    thread: str | None = None  # remote_id of the message to reply under (a flood summary, the original alert)


@dataclass(frozen=True)
class AlertUpdate:
    """A review we already alerted on changed on the site, or somebody handled it."""

    alert: Alert  # the review as it is now
    changes: tuple[str, ...]  # one line each: "rating 1★ → 4★", "the business replied on the site", …
    original: str | None  # remote_id of the alert message (what chat.update edits), when the destination gave one
    settled: bool  # nothing left to do: replied on the site, handled, rating no longer negative, or removed


@dataclass(frozen=True)
class AlertRefresh:
    """The team acted on a review (took it, replied, resolved, snoozed, edited the draft): the alert message is
    edited in place to show it. Destinations that cannot edit a message drop it."""

    alert: Alert  # the review as it is now, with its work state
    original: str  # remote_id of the alert message


@dataclass(frozen=True)
class Reminder:
    """A negative review still has no reply on the site and nobody marked it handled."""

    alert: Alert
    waiting: timedelta  # since repwatch first saw it
    deadline: timedelta  # alerting.reply_deadline


@dataclass(frozen=True)
class Spike:
    """More negative reviews in the last 24 h than a business (or one of its sources) usually gets."""

    business: str
    source: str | None  # None: the business over all its sources
    site: str | None
    count: int  # negative reviews first seen in the 24 h up to `until`
    mean: float  # per day over the 7 days before
    sd: float
    threshold: float  # mean + k·sd, at least alerting.spike.min_reviews
    until: datetime
    examples: tuple[Alert, ...]  # a few of the reviews, most serious first


@dataclass(frozen=True)
class FloodSummary:
    """One run found more alerts for one destination than alerting.flood_threshold: one message instead."""

    count: int
    by_business: tuple[tuple[str, int], ...]
    by_severity: tuple[tuple[str, int], ...]  # critical, high, normal; zeros left out
    items: tuple[Alert, ...]  # the alerts (shown in the summary where the destination has no threads)
    threaded: bool  # True: each alert follows as a reply in this message's thread


@dataclass(frozen=True)
class SourceHealth:
    """For the operator: a source went bad (N failed crawls in a row), recovered, or went quiet."""

    event: str  # "bad" | "recovered" | "silent"
    business: str
    source: str
    site: str
    url: str  # the page crawled (config, not review text)
    state: str  # ok / failing / blocked / broken
    failures: int  # consecutive failed crawls
    error: str | None  # the last crawl's one-line error
    last_success_at: datetime | None
    silent_days: float | None = None  # "silent": days since the last new review
    usual_per_week: float | None = None  # "silent": new reviews a week before it went quiet


Notice = Alert | AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth


@dataclass(frozen=True)
class Builders(Generic[Message]):
    """How one destination writes each thing it sends: one builder per kind of notice."""

    alert: Callable[[Alert], Message]
    update: Callable[[AlertUpdate], Message]
    reminder: Callable[[Reminder], Message]
    spike: Callable[[Spike], Message]
    summary: Callable[[FloodSummary], Message]
    health: Callable[[SourceHealth], Message]

    def build(self, notice: Notice) -> Message:
        """The message for one alert or notice."""
        if isinstance(notice, Alert):
            return self.alert(notice)
        if isinstance(notice, AlertUpdate):
            return self.update(notice)
        if isinstance(notice, Reminder):
            return self.reminder(notice)
        if isinstance(notice, Spike):
            return self.spike(notice)
        if isinstance(notice, FloodSummary):
            return self.summary(notice)
        if isinstance(notice, SourceHealth):
            return self.health(notice)
        raise TypeError(f"no message for a {type(notice).__name__}")


@dataclass(frozen=True)
class SendResult:
    remote_id: str | None  # e.g. "C123/1700000000.000100" for chat.postMessage, None for webhooks


class DeliveryError(Exception):
    """A send failed. `message` is safe to log (never contains a token or webhook URL).

    `retryable` tells the outbox whether to reschedule; `retry_after` (seconds) is the destination's own
    request to wait, when it gave one.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"DeliveryError({self.message!r}, retryable={self.retryable}, retry_after={self.retry_after})"


class Notifier:
    """Base class: a subclass sets `kind`, a pydantic `Config`, and implements `send`.

    The subclass docstring is the user-facing help. Set `abstract = True` on an intermediate base class that
    should not be registered itself.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    abstract: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = plugin_key(NOTIFIERS, cls, "kind", "notifier")
        if kind is not None:
            _check_config_model(cls, kind)
            NOTIFIERS[kind] = cls

    def __init__(self, name: str, config: BaseModel):
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.name = name
        self.config = config

    # True when the destination can reply under an earlier message (Slack with a bot token). Without threads a
    # flood summary lists its alerts itself, and updates and reminders are new messages.
    threads: bool = False
    # True when the destination can edit a message it sent (Slack with a bot token): AlertRefresh is sent only then.
    edits: bool = False

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        """Deliver one alert; raise DeliveryError on failure."""
        raise NotImplementedError

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        """Deliver an update, reminder, spike, flood summary or source health notice; raise DeliveryError on failure."""
        raise NotImplementedError

    def refresh(self, refresh: AlertRefresh) -> SendResult:
        """Edit a sent alert in place to show the team's work on it (only where `edits` is True)."""
        raise NotImplementedError

    def send_test(self, business: str | None = None) -> SendResult:
        """Deliver a sample alert (`repwatch alerts test <kind>`), about `business` when one is given."""
        return self.send(sample_alert(business))

    @classmethod
    def superseded(cls, config: BaseModel) -> Superseded | None:
        """How this entry is written today, when it is written an old way that still works; else None."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _check_config_model(cls: type[Notifier], kind: str) -> None:
    """Config must reject unknown keys and carry `kind: Literal[<kind>]`, or the config union cannot be built."""
    config = cls.__dict__.get("Config")
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise TypeError(f"{cls.__qualname__}.Config must be a pydantic model")
    if config.model_config.get("extra") != "forbid":
        raise TypeError(f"{cls.__qualname__}.Config must set extra='forbid' (unknown config keys are errors)")
    field = config.model_fields.get("kind")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal or typing.get_args(field.annotation) != (kind,):
        raise TypeError(f"{cls.__qualname__}.Config needs a field `kind: Literal[{kind!r}]`")


def notifier_config_types() -> tuple[type[BaseModel], ...]:
    """The Config model of every registered notifier, for a discriminated union on `kind`."""
    return tuple(cls.Config for cls in NOTIFIERS.values())


@dataclass(frozen=True)
class Superseded:
    """A notifier entry written an old way that still works, and how to write it today."""

    written: str  # what the entry says, e.g. "kind: webhook with format: teams"
    kind: str  # the kind to write instead
    fields: dict[str, Any]  # the entry's other keys, as that kind reads them


def _notifier_class(config: BaseModel) -> type[Notifier]:
    kind = getattr(config, "kind", None)
    try:
        return NOTIFIERS[kind]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown notifier kind {kind!r}; known: {', '.join(sorted(NOTIFIERS))}") from None


def build_notifier(name: str, config: BaseModel) -> Notifier:
    """The notifier for one validated config entry (`name` is its key in config.yaml).

    An entry written an old way is built as the kind it is written as today (`kind: webhook, format: teams` is a
    Teams notifier), so it sends exactly what that kind sends.
    """
    cls = _notifier_class(config)
    today = cls.superseded(config)
    if today is not None:
        cls = NOTIFIERS[today.kind]
        config = cls.Config.model_validate({"kind": today.kind, **today.fields})
    return cls(name, config)


def deprecations(name: str, config: BaseModel) -> list[str]:
    """One line per old way of writing this notifier entry, for `repwatch config check` (none: nothing to say)."""
    today = _notifier_class(config).superseded(config)
    if today is None:
        return []
    return [f"notifiers.{name}: {today.written} is deprecated; write kind: {today.kind}"]


def sample_alert(business: str | None = None) -> Alert:
    """A made-up negative review, for `repwatch alerts test`: it shows every part of an alert."""
    return Alert(
        review_id=0,
        business=business or "Example Bakery",
        source="example-test",
        site="Example Reviews",
        url="https://example.com/reviews/0",
        body="This is a test alert from repwatch. If you can read this, alerts reach this destination.",
        label="neg",
        severity="high",
        why="test alert (repwatch alerts test)",
        rating=1,
        author="repwatch",
        title="Test alert",
        published_at=datetime.now(timezone.utc).replace(microsecond=0),
        language="en",
        score=-0.9,
        draft_reply="Thank you for the feedback. (This is a sample draft reply; nothing was posted.)",
    )
