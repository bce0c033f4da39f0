"""The score stage: verdicts for reviews waiting to be scored, alert decisions, and outbox rows for them."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.outbox import enqueue, outbox_row
from models.tables import TOPICS_UNFILLED, Review, Source
from models.vocab import MIXED_LABEL, NEGATIVE_LABELS
from monitor import rules
from monitor.config import Config
from monitor.sentiment import Scorer, TextInput
from monitor.sentiment.training import owner_verdict
from monitor.sentiment.verdict import UNDETERMINED, Verdict
from monitor.topics import TopicMatcher, encode_topics

BATCH_SIZE = 500
MAX_SCORED_CHARS = 5000  # VADER's cost grows faster than length (DESIGN §7); the opening says enough


def scoring_text(review: Review) -> str:
    text = f"{review.title}. {review.body}" if review.title else review.body
    return text[:MAX_SCORED_CHARS]


def businesses_by_source(config: Config) -> dict[str, Any]:
    return {source.name: business for business, source in config.sources()}


def warm_scores(sessions: sessionmaker[Session], scorer: Scorer, source_names: list[str], *,
                batch_size: int = BATCH_SIZE) -> int:
    """Read the unscored reviews of these sources through the model, for its embedding cache only; returns how many.

    The crawl calls this before it takes the outbox lock, which lets one process at a time (on every machine)
    score and send: the model, nearly all of scoring's time, then runs in parallel across crawls, and
    `score_pending` of the same sources under the lock finds the embeddings cached. Writes nothing to the database.
    """
    if not source_names or scorer.text_scorer() is None:
        return 0
    read = 0
    last_id = 0
    while True:
        with sessions() as session:
            batch = session.scalars(
                select(Review).join(Source, Review.source_id == Source.id)
                .where(Source.name.in_(source_names), Review.scored_at.is_(None), Review.id > last_id)
                .order_by(Review.id).limit(batch_size)
            ).all()
        if not batch:
            return read
        last_id = batch[-1].id
        inputs = [TextInput(text=scoring_text(r), stars=r.rating, lang=r.language) for r in batch]
        # and the text alone of new 1★ reviews, which score_pending reads for the critical check when they alert
        inputs += [TextInput(text=scoring_text(r), lang=r.language) for r in batch
                   if r.rating is not None and r.rating <= 1 and not r.baseline]
        scorer.score_many(inputs)
        read += len(batch)


def score_pending(
    sessions: sessionmaker[Session],
    config: Config,
    scorer: Scorer,
    *,
    batch_size: int = BATCH_SIZE,
    now: datetime | None = None,
    source_names: list[str] | None = None,
) -> tuple[int, int]:
    """Score every review with no verdict yet (of these sources, when given), in batches, committing each; returns
    (scored, alerts queued)."""
    now = now or datetime.now(UTC)
    businesses = businesses_by_source(config)
    settings = config.alerting
    critical = rules.CriticalWords(settings.critical_keywords)
    matcher = TopicMatcher.from_config(config)
    scored = queued = 0
    last_id = 0
    while True:
        with sessions.begin() as session:
            batch = session.execute(
                select(Review, Source.name)
                .join(Source, Review.source_id == Source.id)
                .where(Review.scored_at.is_(None), Review.id > last_id,
                       *([Source.name.in_(source_names)] if source_names is not None else []))
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
            decided = [_decide(review, verdict, text, scorer, critical, settings)
                       for (review, _), verdict, text in zip(batch, verdicts, texts, strict=True)]
            # "1★ with strongly negative text" is critical: the text's own score, read only where it can change
            # an alert's severity (a 1★ negative that alerts with no critical word). History from a first crawl
            # never alerts: its 1★ texts are not read (the model is most of a first crawl's scoring time).
            lowest = [i for i, (verdict, keywords, decision) in enumerate(decided)
                      if decision.alert and not keywords and verdict.label in NEGATIVE_LABELS
                      and (rating := batch[i][0].rating) is not None and rating <= 1]
            text_scores = scorer.score_many(
                [TextInput(text=texts[i], lang=decided[i][0].lang if decided[i][0].lang != UNDETERMINED else None)
                 for i in lowest])
            for i, text_score in zip(lowest, text_scores, strict=True):
                verdict, keywords, _ = decided[i]
                decided[i] = (verdict, keywords, _decision(batch[i][0], verdict, settings, keywords, text_score.score))
            updates: list[dict[str, Any]] = []
            deliveries: list[dict[str, Any]] = []
            for (review, source_name), (verdict, _, decision) in zip(batch, decided, strict=True):
                mixed = verdict.label == MIXED_LABEL
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
                        "topics": complaint_topics(matcher, review, verdict.label, verdict.lang),
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
    fill_topics(sessions, matcher, batch_size=batch_size)
    return scored, queued


def complaint_topics(matcher: TopicMatcher, review: Review, label: str | None, lang: str | None) -> str | None:
    """A complaint's topics as stored (monitor.topics.encode_topics), found as its alert finds them; None for a
    review that is no complaint."""
    if label not in (*NEGATIVE_LABELS, MIXED_LABEL):
        return None
    language = lang if lang not in (None, UNDETERMINED) else review.language
    return encode_topics(matcher.topics(scoring_text(review), language))


def fill_topics(sessions: sessionmaker[Session], matcher: TopicMatcher, *, batch_size: int = BATCH_SIZE,
                limit: int = 20 * BATCH_SIZE) -> int:
    """Store the topics of complaints scored before they were stored (migration 0008), up to `limit` a run;
    returns how many. Once all are filled this is one look into an empty index."""
    filled = 0
    while filled < limit:
        with sessions.begin() as session:
            # spelled as the partial index ix_review_topics_unfilled is: SQLite then reads that (small) index
            batch = session.scalars(select(Review).where(text(TOPICS_UNFILLED)).order_by(Review.id)
                                    .limit(batch_size)).all()
            if not batch:
                break
            session.execute(update(Review), [
                {"id": r.id, "topics": complaint_topics(matcher, r, r.sentiment_label, r.sentiment_lang) or ""}
                for r in batch
            ])
            filled += len(batch)
    return filled


def _decide(review: Review, verdict: Verdict, text: str, scorer: Scorer, critical: rules.CriticalWords,
            settings: Any) -> tuple[Verdict, tuple[str, ...], rules.AlertDecision]:
    """A review's verdict (the owner's label first), its critical words and whether it alerts, before any text
    score of its own."""
    if review.owner_label:
        # The owner said what this review is (`repwatch label`): that survives a re-score after an edit.
        verdict = owner_verdict(review.owner_label, verdict.lang)
    negative = verdict.label in NEGATIVE_LABELS
    if negative and verdict.lang == UNDETERMINED and text.strip():
        # Stars decided without reading the text; routing, critical words and the draft reply need its language,
        # and negatives are few enough to detect it for.
        verdict = replace(verdict, lang=scorer.detector.detect(text))
    keywords = tuple(critical.find(text, verdict.lang)) if negative or verdict.label == MIXED_LABEL else ()
    return verdict, keywords, _decision(review, verdict, settings, keywords, None)


def _decision(review: Review, verdict: Verdict, settings: Any, keywords: tuple[str, ...],
              text_score: float | None) -> rules.AlertDecision:
    return rules.decide(
        label=verdict.label,
        rating=review.rating,
        score=verdict.score,
        published_at=review.published_at,
        first_seen_at=review.first_seen_at,
        baseline=review.baseline,
        baseline_window=settings.baseline_window,
        text_score=text_score,
        keywords=keywords,
    )
