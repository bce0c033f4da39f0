"""After scoring: queue what follows an alert (updates, reminders), spike alerts, source health, `repwatch handle`."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import enqueue, outbox_row
from models.tables import Business, Delivery, Review, ReviewVersion, Source
from models.vocab import HANDLED_STATUSES, NEGATIVE_LABELS, SEVERITIES, batched
from monitor import rules
from monitor.config import Config
from monitor.service.alerting import site_name
from monitor.service.work import mark_replies_seen

# Changes and deadlines older than this are history, not news: enabling reminders must not remind about 2019.
HORIZON = timedelta(days=30)
DAY = timedelta(days=1)
SPIKE_HISTORY_DAYS = 7
SPIKE_EXAMPLES = 3
IN_BATCH = 500  # ids per IN (...) list


@dataclass
class FollowupReport:
    updates: int = 0
    reminders: int = 0
    spikes: int = 0
    health: int = 0  # source health notices for the operator
    replied: int = 0  # open reviews whose business reply the crawl found: now `replied`


def queue_followups(sessions: sessionmaker[Session], config: Config, *, now: datetime | None = None) -> FollowupReport:
    """Queue updates, reminders and spike alerts that are due; each is exactly-once by its outbox key."""
    now = now or datetime.now(UTC)
    report = FollowupReport()
    with sessions.begin() as session:
        report.replied = mark_replies_seen(session, now)
        report.updates = queue_updates(session, now)
        if config.alerting.reply_deadline:
            report.reminders = queue_reminders(session, config.alerting.reply_deadline, now)
        if config.alerting.spike is not None:
            report.spikes = queue_spikes(session, config, now)
        report.health = queue_source_health(session, config, now)
    return report


# --- updates -------------------------------------------------------------------------------------------------


def _stars(rating: float | None) -> str:
    return "no rating" if rating is None else f"{rating:g}★"


def describe_change(before: ReviewVersion | None, after: ReviewVersion) -> tuple[list[str], bool]:
    """What a person would say changed between two versions of a review, and whether it needs nothing more."""
    if after.change == "removed":
        return ["the review was removed from the site"], True
    changes: list[str] = []
    if after.change == "reappeared":
        changes.append("the review is back on the site")
    if before is not None and before.rating != after.rating:
        changes.append(f"rating {_stars(before.rating)} → {_stars(after.rating)}")
    had_reply = before is not None and before.reply_body
    if after.reply_body and not had_reply:
        changes.append("the business replied on the site")
    elif after.reply_body and had_reply and after.reply_body != before.reply_body:  # type: ignore[union-attr]
        changes.append("the business's reply was edited")
    elif had_reply and not after.reply_body:
        changes.append("the business's reply is gone from the site")
    if before is None or (before.title, before.body) != (after.title, after.body):
        changes.append("the text was edited")
    settled = bool(after.reply_body) or (after.rating is not None and after.rating >= 4)
    return changes or ["the review changed on the site"], settled


def queue_updates(session: Session, now: datetime) -> int:
    """A review we alerted on changed on the site after the alert went out: one update per change seen."""
    # In steps, each on its own index: recent versions by seen_at, the alerts of their reviews by review_id, the
    # updates already queued by (destination, key); only then the texts, for what is left to queue. As one join,
    # SQLite (no statistics) started from every sent alert in the outbox, and every run rebuilt each update of the
    # last 30 days only for the insert to skip it (3 s a run at a million reviews; bench/bench_scale.py). Sorting
    # and the kind/status tests are done here on purpose: in SQL they lured SQLite into whole-table walks.
    recent = sorted(session.execute(
        select(ReviewVersion.id, ReviewVersion.review_id, ReviewVersion.seen_at)
        .where(ReviewVersion.change != "first", ReviewVersion.seen_at >= now - HORIZON)
    ))
    if not recent:
        return 0
    alerts: dict[int, list[Any]] = defaultdict(list)
    for ids in batched(sorted({version.review_id for version in recent}), IN_BATCH):
        for row in session.execute(
            select(Delivery.id, Delivery.review_id, Delivery.kind, Delivery.status, Delivery.destination,
                   Delivery.channel, Delivery.sent_at)
            .where(Delivery.review_id.in_(ids))
        ):
            if row.kind == "alert" and row.status == "sent" and row.sent_at is not None:
                alerts[row.review_id].append(row)
    pending = [(version, alert, f"update:{version.review_id}:{version.id}")
               for version in recent for alert in sorted(alerts.get(version.review_id, ()), key=lambda a: a.id)
               if version.seen_at > alert.sent_at]
    fresh = not_queued(session, [(alert.destination, key) for _, alert, key in pending])
    pending = [(version, alert, key) for version, alert, key in pending if (alert.destination, key) in fresh]
    if not pending:
        return 0
    # Each version's text, and its predecessor's (the latest earlier one that is not a removal).
    history: dict[int, list[ReviewVersion]] = defaultdict(list)
    for ids in batched(sorted({version.review_id for version, _, _ in pending}), IN_BATCH):
        for earlier in session.scalars(select(ReviewVersion).where(ReviewVersion.review_id.in_(ids))):
            history[earlier.review_id].append(earlier)
    queued = []
    for version, alert, key in pending:
        versions = history[version.review_id]
        after = next(v for v in versions if v.id == version.id)
        before = max((v for v in versions if v.id < version.id and v.change != "removed"), key=lambda v: v.id,
                     default=None)
        changes, settled = describe_change(before, after)
        queued.append(outbox_row(
            "update", key, alert.destination, now, review_id=version.review_id, channel=alert.channel,
            parent_id=alert.id, payload={"changes": changes, "settled": settled},
        ))
    return enqueue(session, queued)


def not_queued(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (destination, dedupe_key) pairs not in the outbox yet, looked up by its unique index.

    What a run would queue again is mostly there already (the insert would skip it): filtering first spares
    building those rows and sending them to the database every run.
    """
    by_destination: dict[str, list[str]] = defaultdict(list)
    for destination, key in keys:
        by_destination[destination].append(key)
    queued: set[tuple[str, str]] = set()
    for destination, names in by_destination.items():
        for chunk in batched(names, IN_BATCH):
            queued.update((row.destination, row.dedupe_key) for row in session.execute(
                select(Delivery.destination, Delivery.dedupe_key)
                .where(Delivery.destination == destination, Delivery.dedupe_key.in_(chunk))
            ))
    return set(keys) - queued


# --- reminders -----------------------------------------------------------------------------------------------


def unanswered(now: datetime, older_than: timedelta = timedelta(0), *, include_baseline: bool = False) -> Any:
    """The condition for a negative review nobody has answered: no reply on the site, not handled, still there,
    and news when found (a severity is set only on reviews that were worth an alert; history from a source's
    first crawl has none). `include_baseline`: that history too (the older negatives stored without an alert)."""
    news = Review.severity.is_not(None)
    return and_(
        Review.sentiment_label.in_(NEGATIVE_LABELS),
        or_(news, Review.baseline.is_(True)) if include_baseline else news,
        Review.reply_body.is_(None),
        Review.reply_published_at.is_(None),
        Review.status.not_in(HANDLED_STATUSES),
        Review.removed_at.is_(None),
        Review.first_seen_at <= now - older_than,
    )


@dataclass(frozen=True)
class BaselineCount:
    """A source's silent baseline: the reviews its first crawl stored, and the older negatives among them that got no
    alert and still wait for an answer (`repwatch reviews --unanswered --include-baseline` lists them)."""

    stored: int
    unanswered: int


def baseline_counts(session: Session, source_names: list[str] | None, now: datetime) -> dict[str, BaselineCount]:
    """Per source (all when None) with baseline reviews: how many there are and how many are unanswered, unalerted
    negatives."""
    waiting = and_(unanswered(now, include_baseline=True), Review.severity.is_(None))
    statement = (select(Source.name, func.count(Review.id), func.count(Review.id).filter(waiting))
                 .join(Source).where(Review.baseline.is_(True)).group_by(Source.name))
    if source_names is not None:
        statement = statement.where(Source.name.in_(source_names))
    return {name: BaselineCount(stored, waiting_n) for name, stored, waiting_n in session.execute(statement)}


def queue_reminders(session: Session, deadline: timedelta, now: datetime) -> int:
    """One reminder per alert whose review is still unanswered after the deadline, in the alert's thread; a snoozed
    review's reminder waits for the end of the snooze (and comes again then, if one came before it)."""
    rows = session.execute(
        select(Delivery.id, Delivery.review_id, Delivery.destination, Delivery.channel, Delivery.mention,
               Review.snoozed_until)
        .join(Review, Review.id == Delivery.review_id)
        .where(Delivery.kind == "alert", Delivery.status == "sent", unanswered(now, deadline),
               or_(Review.snoozed_until.is_(None), Review.snoozed_until <= now),
               Review.first_seen_at >= now - deadline - HORIZON,
               # implied (an alert is queued after its review is first seen), and what lets the database start
               # from recent alerts (ix_delivery_kind_created) instead of every alert ever sent
               Delivery.created_at >= now - deadline - HORIZON)
    ).all()

    def key(row: Any) -> str:
        snoozed = row.snoozed_until
        return f"reminder:{row.review_id}" + (f":after:{snoozed:%Y%m%dT%H%M%S}" if snoozed else "")

    fresh = not_queued(session, [(row.destination, key(row)) for row in rows])
    return enqueue(session, [
        outbox_row("reminder", key(row), row.destination, now, review_id=row.review_id,
                   channel=row.channel, mention=row.mention, parent_id=row.id)
        for row in rows
        if (row.destination, key(row)) in fresh
    ])


# --- spikes --------------------------------------------------------------------------------------------------


def daily_counts(moments: list[datetime], now: datetime, days: int) -> list[int]:
    """Counts per 24 h window ending at `now`: index 0 is the last 24 h, 1 the day before, …"""
    counts = [0] * (days + 1)
    for moment in moments:
        index = int((now - moment) / DAY)
        if 0 <= index <= days:
            counts[index] += 1
    return counts


@dataclass
class SpikeScope:
    key: str  # "source:<name>" or "business:<name>"
    business: Business
    source: Source | None  # None: the business over all its sources
    rows: list[Any]  # its negative reviews of the last 8 days


def spike_scopes(sources: dict[int, tuple[Source, Business]], by_source: dict[int, list[Any]]) -> list[SpikeScope]:
    """Every source, then every business with more than one source (with one, its count is the source's)."""
    scopes = [SpikeScope(f"source:{s.name}", b, s, by_source.get(i, [])) for i, (s, b) in sources.items()]
    per_business: dict[str, list[int]] = defaultdict(list)
    for source_id, (_, business) in sources.items():
        per_business[business.name].append(source_id)
    for ids in per_business.values():
        if len(ids) > 1:
            business = sources[ids[0]][1]
            rows = [row for i in ids for row in by_source.get(i, [])]
            scopes.append(SpikeScope(f"business:{business.name}", business, None, rows))
    return scopes


def queue_spikes(session: Session, config: Config, now: datetime) -> int:
    """Negative reviews in the last 24 h above mean + k·σ of the 7 days before: one message per source, or one
    per business when the spike is spread over its sources. A scope needs 8 days of history to have a "usual"."""
    settings = config.alerting.spike
    if settings is None:  # spike alerts off
        return 0
    history_start = now - DAY * (SPIKE_HISTORY_DAYS + 1)
    sources = {
        source.id: (source, business)
        for source, business in session.execute(select(Source, Business).join(Business))
        if source.baseline_at is not None and source.baseline_at <= history_start
    }
    if not sources:
        return 0
    by_source: dict[int, list[Any]] = defaultdict(list)
    # The sources are picked here, not with `source_id IN (…)`: given that list, SQLite (no statistics) walked
    # every review of every source instead of the last 8 days (1.7 s at a million reviews).
    for row in session.execute(
        select(Review.id, Review.source_id, Review.first_seen_at, Review.severity)
        .where(Review.sentiment_label.in_(NEGATIVE_LABELS), Review.baseline.is_(False),
               Review.first_seen_at >= history_start)
    ):
        if row.source_id in sources:
            by_source[row.source_id].append(row)
    notify = {b.name: b.notify for b in config.businesses}
    seriousness = {s: i for i, s in enumerate(SEVERITIES)}
    spiking: set[str] = set()  # businesses one of whose sources spiked: no business-wide message on top
    queued = 0
    for scope in spike_scopes(sources, by_source):
        if scope.source is None and scope.business.name in spiking:
            continue
        counts = daily_counts([r.first_seen_at for r in scope.rows], now, SPIKE_HISTORY_DAYS)
        decision = rules.spike_of(counts[0], counts[1:], k=settings.k, min_reviews=settings.min_reviews)
        if not decision.spike:
            continue
        spiking.add(scope.business.name)
        recent = session.scalar(select(func.count(Delivery.id)).where(
            Delivery.kind == "spike", Delivery.dedupe_key.like(f"spike:{scope.key}:%"), Delivery.created_at >= now - DAY
        ))
        if recent:
            continue  # one spike message per scope per day, however many runs see it
        route = rules.route_for(
            config.alerting.routes, business=scope.business.name, source=scope.source.name if scope.source else None,
            severity="critical", language=None, default_notify=notify.get(scope.business.name, []),
        )
        if route.cadence != "instant":
            continue
        examples = sorted((r for r in scope.rows if now - r.first_seen_at < DAY),
                          key=lambda r: (seriousness.get(r.severity or "normal", 9), -r.first_seen_at.timestamp()))
        payload = {
            "business": scope.business.name, "source": scope.source.name if scope.source else None,
            "site": site_name(scope.source) if scope.source else None, "count": decision.count,
            "mean": decision.mean, "sd": decision.sd, "threshold": decision.threshold, "until": now.isoformat(),
            "examples": [r.id for r in examples[:SPIKE_EXAMPLES]],
        }
        queued += enqueue(session, [
            outbox_row("spike", f"spike:{scope.key}:{now:%Y-%m-%dT%H}", name, now, channel=route.channel,
                       mention=route.mention, payload=payload)
            for name in route.notify
        ])
    return queued


# --- source health -------------------------------------------------------------------------------------------

USUAL_WINDOW = timedelta(days=90)
# A silence is news when the source would have had this many new reviews in it (Poisson: e^-3 ≈ 5 % by chance).
SILENCE_EXPECTED = 3.0


def queue_source_health(session: Session, config: Config, now: datetime) -> int:
    """Tell the operator once when a source has failed N crawls in a row, once when it works again, and once per
    quiet spell when a source that usually has new reviews has had none for `silence`."""
    settings = config.alerting.source_health
    businesses = {b.name: b for b in config.businesses}
    # One query for the last health message of every source, and one for the sources with a new review inside the
    # silence window (they cannot be silent): per-source queries here cost ~110 s a run for 1,000 sources at a
    # million reviews (each a LIKE over the whole outbox).
    latest: dict[str, Any] = {}
    for row in session.execute(
        select(Delivery.id, Delivery.dedupe_key, Delivery.payload).where(Delivery.kind == "health").order_by(Delivery.id)
    ):
        latest[row.dedupe_key.split(":", 2)[1]] = row  # health:<source>:<event>:<n>; names have no ":"
    recently_new: set[int] = set()
    if settings.silence:
        # (a set here, not DISTINCT: that made SQLite walk a whole index in source order instead of the window)
        recently_new = set(session.scalars(
            select(Review.source_id).where(Review.first_seen_at > now - settings.silence, Review.baseline.is_(False))
        ))
    queued = 0
    for source, business in session.execute(select(Source, Business).join(Business).order_by(Source.id)):
        configured = businesses.get(business.name)
        if configured is None or not any(s.name == source.name for s in configured.sources):
            continue  # no longer in config
        last = latest.get(source.name)
        last_event = (last.payload or {}).get("event") if last else None
        last_id = last.id if last else 0
        silence: dict[str, Any] = {"silent_days": None, "usual_per_week": None}
        event, key = None, None
        if source.consecutive_failures >= settings.after_failures and last_event != "bad":
            event, key = "bad", f"health:{source.name}:bad:{last_id}"
        elif source.state == "ok" and last_event == "bad":
            event, key = "recovered", f"health:{source.name}:recovered:{last_id}"
        elif (source.state == "ok" and settings.silence and source.baseline_at is not None
              and source.id not in recently_new and now - source.baseline_at >= settings.silence):
            quiet = _silence(session, source, now)
            if quiet is not None:
                since, per_week = quiet
                if now - since >= settings.silence and per_week * settings.silence / timedelta(weeks=1) >= SILENCE_EXPECTED:
                    event, key = "silent", f"health:{source.name}:silent:{since:%Y%m%dT%H%M%S}"
                    silence.update(silent_days=round((now - since) / DAY, 1), usual_per_week=round(per_week, 2))
        if event is None or key is None:
            continue
        facts: dict[str, Any] = {  # only for a message: site_name() loads the spider registry each time
            "business": business.name, "source": source.name, "site": site_name(source), "url": source.url,
            "state": source.state, "failures": source.consecutive_failures, "error": source.last_error,
            "last_success_at": source.last_success_at.isoformat() if source.last_success_at else None,
            **silence,
        }
        destinations = settings.notify if settings.notify is not None else configured.notify
        queued += enqueue(session, [
            outbox_row("health", key, name, now, channel=settings.channel, payload={"event": event, **facts})
            for name in destinations
        ])
    return queued


def _silence(session: Session, source: Source, now: datetime) -> tuple[datetime, float] | None:
    """(when the source last had a new review, new reviews a week in the 90 days before that)."""
    # One read of the source's rows by its index, counted here: as max() PostgreSQL walked the whole recent end of
    # ix_review_first_seen_label backwards looking for this source (10 ms a source at a million reviews).
    rows = session.execute(
        select(Review.first_seen_at, Review.published_at, Review.baseline).where(Review.source_id == source.id)
    ).all()
    newest = max((row.first_seen_at for row in rows if not row.baseline), default=None)
    since = max(filter(None, [newest, source.baseline_at]))
    published = sum(1 for row in rows
                    if row.published_at is not None and since - USUAL_WINDOW < row.published_at <= since)
    return since, published / (USUAL_WINDOW / timedelta(weeks=1))


# --- handled -------------------------------------------------------------------------------------------------
