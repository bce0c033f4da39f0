"""The score stage: verdicts for reviews waiting to be scored, alert decisions, and outbox rows for them."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import enqueue, outbox_row
from models.tables import Review, Source
from monitor import rules
from monitor.sentiment import Scorer, TextInput
from monitor.sentiment.training import owner_verdict
from monitor.sentiment.verdict import UNDETERMINED

BATCH_SIZE = 500
MAX_SCORED_CHARS = 5000  # VADER's cost grows faster than length (DESIGN §7); the opening says enough


def scoring_text(review: Review) -> str:
    text = f"{review.title}. {review.body}" if review.title else review.body
    return text[:MAX_SCORED_CHARS]


def businesses_by_source(config: Any) -> dict[str, Any]:
    return {source.name: business for business, source in config.sources()}


def score_pending(
    sessions: sessionmaker[Session],
    config: Any,
    scorer: Scorer,
    *,
    batch_size: int = BATCH_SIZE,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Score every review with no verdict yet, in batches, committing each; returns (scored, alerts queued)."""
    now = now or datetime.now(UTC)
    businesses = businesses_by_source(config)
    settings = config.alerting
    critical = rules.CriticalWords(settings.critical_keywords)
    scored = queued = 0
    last_id = 0
    while True:
        with sessions.begin() as session:
            batch = session.execute(
                select(Review, Source.name)
                .join(Source, Review.source_id == Source.id)
                .where(Review.scored_at.is_(None), Review.id > last_id)
                .order_by(Review.id)
                .limit(batch_size)
            ).all()
            if not batch:
                break
            last_id = batch[-1][0].id
            texts = [scoring_text(r) for r, _ in batch]
            verdicts = scorer.score_many(
                [TextInput(text=text, stars=r.rating, lang=r.language) for (r, _), text in zip(batch, texts, strict=True)]
            )
            # "1★ with strongly negative text" is critical: for the few 1★ negatives, the text's own score.
            lowest = [i for i, ((r, _), v) in enumerate(zip(batch, verdicts, strict=True))
                      if v.label in rules.NEGATIVE_LABELS and r.rating is not None and r.rating <= 1]
            text_scores = dict(zip(lowest, scorer.score_many(
                [TextInput(text=texts[i], lang=verdicts[i].lang if verdicts[i].lang != "und" else None) for i in lowest]
            ), strict=True))
            updates: list[dict] = []
            deliveries: list[dict] = []
            for index, ((review, source_name), verdict) in enumerate(zip(batch, verdicts, strict=True)):
                if review.owner_label:
                    # The owner said what this review is (`repwatch label`): that survives a re-score after an edit.
                    verdict = owner_verdict(review.owner_label, verdict.lang)
                negative = verdict.label in rules.NEGATIVE_LABELS
                mixed = verdict.label == rules.MIXED_LABEL
                if negative and verdict.lang == UNDETERMINED and texts[index].strip():
                    # Stars decided without reading the text; routing, critical words and the draft reply need
                    # its language, and negatives are few enough to detect it for.
                    verdict = replace(verdict, lang=scorer.detector.detect(texts[index]))
                decision = rules.decide(
                    label=verdict.label,
                    rating=review.rating,
                    score=verdict.score,
                    published_at=review.published_at,
                    first_seen_at=review.first_seen_at,
                    baseline=review.baseline,
                    baseline_window=settings.baseline_window,
                    text_score=text_scores[index].score if index in text_scores else None,
                    keywords=critical.find(texts[index], verdict.lang) if negative or mixed else (),
                )
                why = verdict.why
                if decision.alert and (mixed or decision.severity == "critical") and decision.reason != "negative review":
                    why = f"{decision.reason}; {why}" if why else decision.reason
                updates.append(
                    {
                        "id": review.id,
                        "sentiment_label": verdict.label,
                        "sentiment_score": verdict.score,
                        "sentiment_lang": verdict.lang,
                        "sentiment_why": why,
                        "severity": decision.severity,
                        "scored_at": now,
                    }
                )
                business = businesses.get(source_name)
                if decision.alert and business is not None:
                    route = rules.route_for(
                        settings.routes, business=business.name, source=source_name,
                        severity=decision.severity or "normal", language=verdict.lang, default_notify=business.notify,
                    )
                    if route.cadence == "instant":
                        deliveries.extend(
                            outbox_row("alert", f"alert:{review.id}", name, now, review_id=review.id,
                                       channel=route.channel, mention=route.mention)
                            for name in route.notify
                        )
            session.execute(update(Review), updates)
            queued += enqueue(session, deliveries)
            scored += len(batch)
    return scored, queued
