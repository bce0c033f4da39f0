"""Review rows → finished Alert values (site, topics, draft reply), the configured notifiers, and delivering the outbox."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.base import (
    Alert,
    DeliveryError,
    Notifier,
    SendResult,
    Topic,
    build_notifier,
)
from alerts.email import EmailReport, digest_test_message, send_email
from alerts.outbox import DeliveryReport, OutboxSettings, deliver_due
from models.tables import Business, Review, Source
from models.vocab import MIXED_LABEL
from monitor.config import Config, ConfigError
from monitor.drafts import Drafts
from monitor.topics import TopicMatcher
from spiders.registry import load_spiders


def site_name(source: Source) -> str:
    """How the owner calls the site: the spider's site name, or for generic spiders the page's host."""
    spider = load_spiders().get(source.kind)
    if spider is not None and spider.site_name:
        return spider.site_name
    return urlsplit(source.url).hostname or source.kind


class AlertBuilder:
    """Review rows → Alert values, with the site's name, topics and a draft reply in the review's language."""

    def __init__(self, config: Config):
        self.drafts = Drafts(config.alerting.drafts)
        self.topics = TopicMatcher.from_config(config)
        self._sites: dict[int, tuple[str, bool]] = {}  # source id → site name, posts from many sites

    def _site(self, source: Source) -> tuple[str, bool]:
        if source.id not in self._sites:
            spider = load_spiders().get(source.kind)
            self._sites[source.id] = (site_name(source), spider is not None and spider.many_sites)
        return self._sites[source.id]

    def site(self, review: Review, source: Source) -> str:
        site, many_sites = self._site(source)
        if many_sites:  # e.g. a feed of mentions: the post's own host is where to answer
            site = urlsplit(review.url or "").hostname or site
        return site

    def alert(self, review: Review, source: Source, business: Business,
              also_posted_on: tuple[str, ...] = ()) -> Alert:
        site = self.site(review, source)
        language = review.sentiment_lang if review.sentiment_lang not in (None, "und") else review.language
        text = f"{review.title}. {review.body}" if review.title else review.body
        # a mixed review (4-5★, negative text) is a complaint too: its topics pick the draft and show in the alert
        complaint = review.sentiment_label in ("neg", MIXED_LABEL)
        topics = tuple(self.topics.topics(text, language)) if complaint else ()
        return Alert(
            review_id=review.id,
            business=business.name,
            source=source.name,
            site=site,
            url=review.url,
            body=review.body,
            label=review.sentiment_label or "unscored",
            severity=review.severity or "normal",
            why=review.sentiment_why or "",
            rating=review.rating,
            author=review.author,
            title=review.title,
            published_at=review.published_at,
            language=language,
            score=review.sentiment_score,
            # the team's edit (the inbox, Slack's Edit draft) wins over the generated draft
            draft_reply=review.draft_reply or self.drafts.draft(language=language, topics=topics,
                                                                author=review.author, business=business.name, site=site),
            topics=tuple(Topic(name, self.topics.title(name)) for name in topics),
            incident_id=review.incident_id,
            app_version=review.app_version,
            votes=review.votes,
            also_posted_on=also_posted_on,
            status=review.status,
            assignee=review.assignee,
            status_changed_at=review.status_changed_at,
            work_version=review.work_version or 0,
        )

    def alerts(self, session: Session, review_ids: list[int]) -> dict[int, Alert]:
        rows = session.execute(
            select(Review, Source, Business)
            .join(Source, Review.source_id == Source.id)
            .join(Business, Source.business_id == Business.id)
            .where(Review.id.in_(review_ids))
        ).all()
        elsewhere = self._elsewhere(session, [review for review, _, _ in rows])
        return {review.id: self.alert(review, source, business, elsewhere.get(review.id, ()))
                for review, source, business in rows}

    def _elsewhere(self, session: Session, reviews: list[Review]) -> dict[int, tuple[str, ...]]:
        """For each review of an incident: the sites of the incident's other posts, first posted first."""
        incidents = {r.incident_id for r in reviews if r.incident_id is not None}
        if not incidents:
            return {}
        posts = sorted(
            ((review, source) for review, source in session.execute(
                select(Review, Source).join(Source, Review.source_id == Source.id)
                .where(Review.incident_id.in_(incidents))
            )),
            key=lambda row: (row[0].published_at or row[0].first_seen_at, row[0].id),
        )
        found: dict[int, tuple[str, ...]] = {}
        for review in reviews:
            if review.incident_id is not None:
                sites = [self.site(other, source) for other, source in posts
                         if other.incident_id == review.incident_id and other.id != review.id]
                found[review.id] = tuple(dict.fromkeys(sites))
        return found


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """Every configured notifier by its name in config.yaml."""
    return {name: build_notifier(name, notifier_config) for name, notifier_config in config.notifiers.items()}


def notifiers_of_kind(config: Config, kind: str) -> dict[str, Notifier]:
    """The configured notifiers of one kind (`repwatch alerts test KIND`).

    An entry written the old way answers to both kinds: `kind: webhook, format: teams` is found by teams and webhook.
    """
    return {name: notifier for name, notifier in build_notifiers(config).items()
            if kind in (notifier.kind, config.notifiers[name].kind)}


def business_for(config: Config, notifier: str) -> str | None:
    """The first business whose alerts go to this notifier (else the first business), for a test alert that names
    it; None when the config lists no business."""
    for business in config.businesses:
        if notifier in business.notify:
            return business.name
    # reached through routes or source health only: still the owner's business, not a made-up one
    return config.businesses[0].name if config.businesses else None


def outbox_settings(config: Config) -> OutboxSettings:
    alerting = config.alerting
    return OutboxSettings(flood_threshold=alerting.flood_threshold, max_attempts=alerting.max_attempts,
                          max_inline_wait=alerting.max_inline_wait, reply_deadline=alerting.reply_deadline)


def deliver(
    sessions: sessionmaker[Session],
    config: Config,
    *,
    notifiers: dict[str, Notifier] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every due outbox message through the configured notifiers (or `notifiers`, given by name)."""
    notifiers = build_notifiers(config) if notifiers is None else notifiers
    return deliver_due(sessions, notifiers, AlertBuilder(config), outbox_settings(config), now=now, sleep=sleep)


def send_tests(config: Config, kind: str) -> list[tuple[str, SendResult | DeliveryError]]:
    """A sample alert through each configured notifier of this kind, naming the business it serves: what each
    answered, in config order (an empty list: no notifier of that kind)."""
    outcomes: list[tuple[str, SendResult | DeliveryError]] = []
    for name, notifier in notifiers_of_kind(config, kind).items():
        try:
            outcomes.append((name, notifier.send_test(business_for(config, name))))
        except DeliveryError as exc:
            outcomes.append((name, exc))
    return outcomes


def send_digest_test(config: Config) -> EmailReport:
    """A short test email through the digest's SMTP settings (`alerts test email` with no email notifier);
    raises DeliveryError when the server would not take it, ConfigError without a digest: section."""
    if config.digest is None:
        raise ConfigError(["no digest: section (SMTP server and recipients); see `repwatch init`"])
    return send_email(digest_test_message(config.digest, datetime.now(UTC)), config.digest.smtp)
