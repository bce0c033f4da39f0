"""The weekly digest as a service: build each business's digest for a week, render it, send it by email."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.digest import (
    Digest,
    IsoWeek,
    build_digest,
    build_digest_email,
    chart_data_uri,
    render_chart,
    render_html,
)
from alerts.email import EmailReport, send_email
from models.tables import DigestSent
from monitor.config import Config, ConfigError
from monitor.service.locks import DIGEST_LOCK, acquire, database_lock
from monitor.service.pipeline import open_sessions
from monitor.topics import TopicMatcher
from spiders.registry import load_spiders

__all__ = ["DigestOutcome", "IsoWeek", "business_names", "digests_for_week", "preview_html", "send_digest",
           "week_of"]


def week_of(label: str | None, *, now: datetime | None = None) -> IsoWeek:
    """`2026-W47`, or the last complete week (UTC) when none is given; raises ValueError saying what is wrong."""
    return IsoWeek.parse(label) if label else IsoWeek.last_complete(now or datetime.now(UTC))


def business_names(config: Config, only: str | None = None) -> list[str]:
    """The businesses a digest is for: all, or the one asked for (ConfigError with a did-you-mean otherwise)."""
    names = [b.name for b in config.businesses]
    if only is None:
        return names
    if only not in names:
        hint = difflib.get_close_matches(only, names, n=1)
        raise ConfigError([f"no business named {only!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")])
    return [only]


def digests_for_week(config: Config, week: IsoWeek, names: list[str], *,
                     sessions: sessionmaker[Session] | None = None) -> list[Digest]:
    sessions = sessions or open_sessions(config)
    topics = TopicMatcher.from_config(config)
    with sessions() as session:
        return [build_digest(session, name, week, topics=topics, site_names=site_names(config)) for name in names]


def site_names(config: Config) -> dict[str, str]:
    """Source → the site's name where the alerts use one ("Trustpilot"), so the digest calls it the same; a generic
    source (and a feed of posts from many sites) keeps its host."""
    spiders = load_spiders()
    return {source.name: spiders[source.kind].site_name for _, source in config.sources()
            if source.kind in spiders and spiders[source.kind].site_name and not spiders[source.kind].many_sites}


def preview_html(digest: Digest) -> str:
    """The digest's HTML with its chart inline, to open in a browser."""
    return render_html(digest, chart_data_uri(render_chart(digest)))


@dataclass(frozen=True)
class DigestOutcome:
    """What `send_digest` did for one business and week: sent now (`report`), or not, as it went out before."""

    report: EmailReport | None  # None: not sent now
    earlier_at: datetime | None = None  # when it went out before (sent again with `force`)
    earlier_to: str = ""  # who accepted it then


def send_digest(config: Config, digest: Digest, *, force: bool = False,
                sessions: sessionmaker[Session] | None = None) -> DigestOutcome:
    """Email one digest to digest.to, once per business and week: a digest sent before is not sent again unless
    `force`. Raises DeliveryError (retryable or not) when the server would not take it.

    One sender at a time (the daemon's retry and an operator's `--send`, on any machine sharing the database), so
    that both cannot find it unsent and send it twice.
    """
    if config.digest is None:
        raise ConfigError(["no digest: section (SMTP server and recipients); see `repwatch init`"])
    sessions = sessions or open_sessions(config)
    week = digest.week.label
    with acquire(config.data_dir, DIGEST_LOCK, wait=True), database_lock(config.database_url(), DIGEST_LOCK):
        with sessions() as session:
            earlier = session.scalar(select(DigestSent).where(DigestSent.business == digest.business,
                                                              DigestSent.week == week))
        if earlier is not None and not force:
            return DigestOutcome(None, earlier.sent_at, earlier.recipients)
        report = send_email(build_digest_email(digest, config.digest), config.digest.smtp)
        if report.accepted:  # refused by every recipient: not sent, a retry may do better
            with sessions.begin() as session:
                row = session.scalar(select(DigestSent).where(DigestSent.business == digest.business,
                                                              DigestSent.week == week))
                if row is None:
                    row = DigestSent(business=digest.business, week=week)
                    session.add(row)
                row.sent_at, row.recipients = datetime.now(UTC), ", ".join(report.accepted)
    return DigestOutcome(report, earlier.sent_at if earlier else None, earlier.recipients if earlier else "")
