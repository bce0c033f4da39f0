"""The weekly digest as a service: build each business's digest for a week, render it, send it by email."""
from __future__ import annotations

import difflib
from datetime import UTC, datetime

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
from monitor.config import Config, ConfigError
from monitor.service.pipeline import open_sessions
from monitor.topics import TopicMatcher

__all__ = ["IsoWeek", "business_names", "digests_for_week", "preview_html", "send_digest", "week_of"]


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
        return [build_digest(session, name, week, topics=topics) for name in names]


def preview_html(digest: Digest) -> str:
    """The digest's HTML with its chart inline, to open in a browser."""
    return render_html(digest, chart_data_uri(render_chart(digest)))


def send_digest(config: Config, digest: Digest) -> EmailReport:
    """Email one digest to digest.to; raises DeliveryError (retryable or not) when the server would not take it."""
    if config.digest is None:
        raise ConfigError(["no digest: section (SMTP server and recipients); see `repwatch init`"])
    return send_email(build_digest_email(digest, config.digest), config.digest.smtp)
