"""Webhook notifier: each alert or notice POSTed as repwatch's own JSON schema (version 1) to a URL of your own."""
from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from alerts.base import (
    Builders,
    Alert,
    AlertUpdate,
    FloodSummary,
    Notice,
    Notifier,
    Reminder,
    SendResult,
    SourceHealth,
    Spike,
    Superseded,
    Target,
)
from alerts.http import JsonEndpoint, WebhookTarget, json_body
from alerts.phrasing import tally
from alerts.text import safe_review_url, without_surrogates
from models.vocab import iso_utc

SCHEMA_VERSION = 1
# What a refusal means when the endpoint is your own.
JSON_HINTS = {
    400: "the endpoint rejected the message; does it expect repwatch's JSON (format: json)?",
    401: "access refused; check `headers` (e.g. Authorization)",
    403: "access refused; check `headers` (e.g. Authorization)",
}


class WebhookConfig(WebhookTarget):
    """`url` (a secret: webhook URLs carry tokens), optional `headers` (values are secrets)."""

    kind: Literal["webhook"]
    # teams and discord: how those kinds were written before they were kinds of their own (still read, deprecated).
    format: Literal["json", "teams", "discord"] = "json"


# --------------------------------------------------------------------------------------------------------------
# Bodies


def _number(value: float | None) -> float | None:
    # NaN and infinities are not JSON; a strict parser on the other side would reject the whole alert.
    return value if value is not None and math.isfinite(value) else None


def review_object(alert: Alert) -> dict[str, Any]:
    """One review as the JSON schema carries it: a type "alert" body, and each review inside the other types.

    Text fields carry the review's text as found (untrusted: escape it wherever you display it); `url` is the
    review's http(s) link, or null when the site gave something else (never javascript:, file:, ...).
    """
    return {
        "review_id": alert.review_id,
        "business": without_surrogates(alert.business),
        "source": without_surrogates(alert.source),
        "site": without_surrogates(alert.site),
        "url": safe_review_url(alert.url),
        "rating": _number(alert.rating),
        "author": without_surrogates(alert.author),
        "title": without_surrogates(alert.title),
        "body": without_surrogates(alert.body),
        "published_at": iso_utc(alert.published_at),
        "language": without_surrogates(alert.language),
        "label": without_surrogates(alert.label),
        "score": _number(alert.score),
        "severity": without_surrogates(alert.severity),
        "why": without_surrogates(alert.why),
        "draft_reply": without_surrogates(alert.draft_reply),
        "topics": [without_surrogates(topic.name) for topic in alert.topics],
        "incident_id": alert.incident_id,
        "also_posted_on": [without_surrogates(site) for site in alert.also_posted_on],
    }


def _envelope(kind: str) -> dict[str, Any]:
    # Every body says its schema version and type first; new fields and types are additions, never changes.
    return {"repwatch_version": SCHEMA_VERSION, "type": kind}


def build_json(alert: Alert) -> dict[str, Any]:
    """repwatch's own webhook schema, version 1, type "alert" (documented in the WebhookNotifier docstring and docs/alerts.md)."""
    return _envelope("alert") | review_object(alert)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def json_update(update: AlertUpdate) -> dict[str, Any]:
    return _envelope("update") | {
        "review": review_object(update.alert),
        "changes": [without_surrogates(line) for line in update.changes],
        "settled": update.settled,
    }


def json_reminder(reminder: Reminder) -> dict[str, Any]:
    return _envelope("reminder") | {
        "review": review_object(reminder.alert),
        "waiting_hours": _hours(reminder.waiting),
        "deadline_hours": _hours(reminder.deadline),
    }


def json_spike(spike: Spike) -> dict[str, Any]:
    return _envelope("spike") | {
        "business": without_surrogates(spike.business),
        "source": without_surrogates(spike.source),
        "site": without_surrogates(spike.site),
        "count": spike.count,
        "mean": _number(spike.mean),
        "sd": _number(spike.sd),
        "threshold": _number(spike.threshold),
        "until": iso_utc(spike.until),
        "examples": [review_object(alert) for alert in spike.examples],
    }


def json_summary(summary: FloodSummary) -> dict[str, Any]:
    # Every item, not a sample: a webhook has no threads, so the alerts are not sent one by one after this.
    return _envelope("summary") | {
        "count": summary.count,
        "by_business": tally(summary.by_business),
        "by_severity": tally(summary.by_severity),
        "items": [review_object(alert) for alert in summary.items],
    }


def json_health(health: SourceHealth) -> dict[str, Any]:
    return _envelope("source_health") | {
        "event": health.event,
        "business": without_surrogates(health.business),
        "source": without_surrogates(health.source),
        "site": without_surrogates(health.site),
        "url": safe_review_url(health.url),
        "state": health.state,
        "failures": health.failures,
        "error": without_surrogates(health.error),
        "last_success_at": iso_utc(health.last_success_at),
        "silent_days": _number(health.silent_days),
        "usual_per_week": _number(health.usual_per_week),
    }


BUILDERS = Builders(alert=build_json, update=json_update, reminder=json_reminder, spike=json_spike,
                    summary=json_summary, health=json_health)


def render(notice: Notice) -> bytes:
    """The request body for one alert or notice."""
    return json_body(BUILDERS.build(notice))


# --------------------------------------------------------------------------------------------------------------
# Delivery


class WebhookNotifier(Notifier):
    """POST each alert and notice as JSON in repwatch's own schema to a URL (your own endpoint, an automation tool).

        kind: webhook
        url: ${ALERT_WEBHOOK_URL}
        headers:                  # optional
          Authorization: "Bearer ${ALERT_WEBHOOK_TOKEN}"

    Every body has "repwatch_version": 1 and a "type". A review object is {"review_id", "business", "source",
    "site", "url", "rating", "author", "title", "body", "published_at" (ISO 8601, UTC), "language", "label",
    "score", "severity", "why", "draft_reply", "topics" (list), "incident_id", "also_posted_on" (list of sites)}; missing values are null and review text is as
    found on the site (escape it when you show it). Types: "alert" (the review object's fields at the top level);
    "update" (a review changed or was handled: "review", "changes" (list of lines), "settled" (true: nothing left
    to do)); "reminder" (still no reply: "review", "waiting_hours", "deadline_hours"); "spike" (more negative
    reviews than usual: "business", "source" and "site" (null: all sources), "count" in the 24 h up to "until"
    (ISO 8601, UTC), "mean" and "sd" per day over the 7 days before, "threshold", "examples" (review objects));
    "summary" (one run found more alerts than alerting.flood_threshold: "count", "by_business" and "by_severity"
    (name: count), "items": every alert, as review objects, since they are not sent one by one); "source_health"
    (a source went bad, recovered or went quiet). Ignore types you do not know: more may come.

    Optional: timeout: 10, min_interval: 1 (seconds between sends). 429 (with Retry-After), 5xx and network errors
    are retried by the outbox; other 4xx are not. For Microsoft Teams and Discord use kind: teams and kind: discord
    (`format: teams|discord` here still works, and is deprecated).
    """

    kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[BaseModel]] = WebhookConfig
    config: WebhookConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self.endpoint = JsonEndpoint(self.config, "webhook", JSON_HINTS)

    @classmethod
    def superseded(cls, config: BaseModel) -> Superseded | None:
        assert isinstance(config, WebhookConfig)
        if config.format == "json":
            return None
        # Only the keys written: an unset min_interval takes the new kind's own default, as format: did.
        fields = config.model_dump(exclude={"kind", "format"}, exclude_unset=True)
        return Superseded(written=f"kind: webhook with format: {config.format}", kind=config.format, fields=fields)

    def send(self, alert: Alert, target: Target = Target()) -> SendResult:
        # `target` does not apply: one URL is one channel, webhooks cannot reply in a thread, nobody is pinged.
        self.endpoint.post(render(alert))
        return SendResult(remote_id=None)

    def send_notice(self, notice: AlertUpdate | Reminder | Spike | FloodSummary | SourceHealth,
                    target: Target = Target()) -> SendResult:
        # Updates and reminders are new messages (no threads, no editing the original); a summary lists its alerts.
        self.endpoint.post(render(notice))
        return SendResult(remote_id=None)
