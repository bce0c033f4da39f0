"""Learning from the owner: `repwatch label` records corrections, `repwatch train` fits a head on them."""
from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Review

from .head import CLASSES, fit
from .multilingual import MultilingualScorer, anchor_embeddings, anchors
from .scorer import Scorer
from .verdict import NEG, TextInput, Verdict

OWNER_LABELS = CLASSES  # neg, neu, pos
OWNER_WHY = "labelled by the owner"
MIN_LABELS = 12  # fewer, and a held-out part says nothing
HOLDOUT = 0.25
ANCHOR_WEIGHT = 0.5  # an anchor sentence counts half an owner's review: the owner's reviews lead, anchors keep
# languages and classes the owner has not labelled yet from collapsing


class LabelError(ValueError):
    """A label or CSV row that cannot be recorded, with the reason."""


def owner_score(label: str) -> float:
    return {"neg": -1.0, "neu": 0.0, "pos": 1.0}[label]


def owner_verdict(label: str, lang: str) -> Verdict:
    """The verdict for a review the owner labelled: it wins over the scorer's (the score stage's re-scoring too)."""
    return Verdict(label, owner_score(label), lang, OWNER_WHY)


def read_label_csv(path: Path) -> list[tuple[int, str]]:
    """(review id, label) rows of a CSV with an `id,label` header; every bad row is reported, by line."""
    rows: list[tuple[int, str]] = []
    problems: list[str] = []
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"id", "label"} <= {f.strip().lower() for f in reader.fieldnames}:
            raise LabelError(f"{path}: needs a header with columns id,label (got {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            try:
                rows.append((int(row["id"]), check_label(row["label"])))
            except ValueError as exc:
                problems.append(f"{path}:{line}: {exc}")
    if problems:
        raise LabelError("\n".join(problems))
    return rows


def check_label(label: str) -> str:
    value = label.strip().lower()
    if value not in OWNER_LABELS:
        raise LabelError(f"label must be one of {', '.join(OWNER_LABELS)}, got {label!r}")
    return value


def record_labels(sessions: sessionmaker[Session], rows: Sequence[tuple[int, str]], *, now: datetime | None = None) -> list[int]:
    """Store the owner's labels, which also become the reviews' verdicts now; returns the ids that do not exist."""
    now = now or datetime.now(UTC)
    wanted = {review_id: label for review_id, label in rows}  # the last row for an id wins, as in a spreadsheet
    with sessions.begin() as session:
        known = set(session.scalars(select(Review.id).where(Review.id.in_(list(wanted)))))
        missing = sorted(set(wanted) - known)
        if known:
            session.execute(
                update(Review),
                [{"id": review_id, "owner_label": label, "owner_labelled_at": now, "sentiment_label": label,
                  "sentiment_score": owner_score(label), "sentiment_why": OWNER_WHY, "scored_at": now}
                 for review_id, label in wanted.items() if review_id in known],
            )  # fmt: skip
    return missing


@dataclass(frozen=True)
class Labelled:
    review_id: int
    text: str
    lang: str | None
    label: str


def labelled_reviews(sessions: sessionmaker[Session]) -> list[Labelled]:
    with sessions() as session:
        reviews = session.scalars(select(Review).where(Review.owner_label.is_not(None)).order_by(Review.id)).all()
        return [Labelled(r.id, review_text(r), r.sentiment_lang if r.sentiment_lang not in (None, "und") else r.language,
                         r.owner_label) for r in reviews if r.owner_label is not None]  # fmt: skip


def review_text(review: Review) -> str:
    """What the scorer reads (monitor.service.scoring.scoring_text, without importing the score stage)."""
    return f"{review.title}. {review.body}" if review.title else review.body


@dataclass(frozen=True)
class TrainReport:
    labels: int
    counts: dict[str, int]
    held_out: int
    before: dict[str, float]  # precision, recall, f1 for neg on the held-out part, the scorer as it was
    after: dict[str, float]  # the same for the head fitted on the rest
    saved: Path | None  # None: not better, not saved (unless forced)


def split(items: Sequence[Labelled], holdout: float = HOLDOUT, seed: int = 0) -> tuple[list[Labelled], list[Labelled]]:
    """Stratified by label: each label keeps ~`holdout` of its reviews for the test, at least one of two."""
    rng = random.Random(seed)
    train: list[Labelled] = []
    test: list[Labelled] = []
    for label in OWNER_LABELS:
        group = [item for item in items if item.label == label]
        rng.shuffle(group)
        cut = round(len(group) * holdout) if len(group) >= 2 else 0
        cut = max(cut, 1) if len(group) >= 2 else 0
        test += group[:cut]
        train += group[cut:]
    return train, test


def neg_prf(gold: Iterable[str], predicted: Iterable[str]) -> dict[str, float]:
    pairs = list(zip(gold, predicted, strict=True))
    tp = sum(g == NEG and p == NEG for g, p in pairs)
    fp = sum(g != NEG and p == NEG for g, p in pairs)
    fn = sum(g == NEG and p != NEG for g, p in pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


def train(sessions: sessionmaker[Session], scorer: Scorer, *, force: bool = False, seed: int = 0) -> TrainReport:
    """Fit a head on the owner's labelled reviews (plus the anchors), measure it on a held-out quarter against
    the scorer as it is, and save it under data_dir when it is at least as good (or `force`)."""
    if scorer.owner_head_path is None:
        raise LabelError("training needs a data_dir to keep the head in")
    items = labelled_reviews(sessions)
    counts = {label: sum(item.label == label for item in items) for label in OWNER_LABELS}
    if len(items) < MIN_LABELS or counts[NEG] < 2 or counts[NEG] == len(items):
        raise LabelError(f"need at least {MIN_LABELS} labelled reviews, 2 or more of them neg and some not neg "
                         f"(have {len(items)}: {counts}); label more with `repwatch label`")  # fmt: skip
    current = scorer.text_scorer()
    if current is None:
        raise LabelError(f"training needs the multilingual model: {scorer.fallback_reason}")
    model = scorer.model
    assert model is not None
    train_part, test_part = split(items, seed=seed)
    # "Before" is the default scorer, never an earlier owner head (it was fitted on these very reviews).
    before = scorer.without_owner_head().score_many([TextInput(item.text, lang=item.lang) for item in test_part])
    anchor_rows = anchors()
    anchor_x = anchor_embeddings(model)
    anchor_y = [label for label, _, _ in anchor_rows]

    def fitted(part: Sequence[Labelled]):
        x = np.vstack([model.embed([item.text for item in part]), anchor_x])
        weights = np.concatenate([np.ones(len(part)), np.full(len(anchor_rows), ANCHOR_WEIGHT)])
        return fit(x, [item.label for item in part] + anchor_y, l2=1e-3, sample_weight=weights,
                   info={"fitted_on": "owner labels", "labels": len(part)})  # fmt: skip

    trial = MultilingualScorer(model, fitted(train_part), owner=True)
    readings = trial.read([item.text for item in test_part])
    after = [trial.label(reading.score.s, item.lang or "und") for item, reading in zip(test_part, readings, strict=True)]
    gold = [item.label for item in test_part]
    report_before = neg_prf(gold, [v.label for v in before])
    report_after = neg_prf(gold, after)
    saved = None
    if force or report_after["f1"] >= report_before["f1"]:
        head = fitted(items)
        head.info.update(trained_at=datetime.now(UTC).isoformat(timespec="seconds"), f1_before=report_before["f1"],
                         f1_after=report_after["f1"], held_out=len(test_part))  # fmt: skip
        head.save(scorer.owner_head_path)
        saved = scorer.owner_head_path
    return TrainReport(len(items), counts, len(test_part), report_before, report_after, saved)
