"""Scale benchmark: a million stored reviews on SQLite or PostgreSQL (queries, inserts, size), and crawl memory as it grows."""
from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.bench_crawl import ROBOTS, _tree_hwm_kib, repwatch_command
from bench.site import build_site, start_path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "repwatch_bench"
DESTINATION = "webhook"  # the one notifier of the generated config; every stored delivery went to it

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
KINDS = [("trustpilot", 0.50), ("yelp", 0.14), ("bbb", 0.08), ("consumeraffairs", 0.07), ("ceneo", 0.08),
         ("skroutz", 0.06), ("schema_org", 0.07)]
LANGS = [("en", 0.70), ("de", 0.08), ("pl", 0.08), ("ro", 0.05), ("el", 0.05), ("fr", 0.04)]
RATING_P = [0.17, 0.06, 0.07, 0.14, 0.56]  # 1…5★: the J-shape of review sites
CHUNK = 20_000


# --------------------------------------------------------------------------------------------------------------
# Text: sentence pools by tone; a review body is a few sentence ids, so any version can be rebuilt cheaply.

_NEG_OPEN = ["The parcel arrived two weeks late and", "I asked for a refund three times and", "Customer service never",
             "The courier left it outside in the rain and", "They charged my card twice and",
             "The product broke after one use and", "Nobody answered the phone for days and",
             "The order was cancelled without notice and", "The tracking number never worked and",
             "Staff were rude at the counter and", "Prices went up at checkout and", "The room was dirty and"]
_NEG_END = ["I am still waiting for my money back.", "nobody replied to my emails.", "the refund never came.",
            "support kept closing my ticket.", "I will never order again.", "the replacement was broken too.",
            "they blamed the delivery company.", "I had to file a chargeback.", "it took an hour to get through.",
            "the manager did not care.", "half of the items were missing.", "the quality is really poor."]
_POS_OPEN = ["Ordered on Monday and", "Second time buying here and", "The staff were friendly and",
             "Great prices and", "Easy checkout and", "I was sceptical at first but", "Fast delivery and",
             "Lovely shop and", "Customer service answered quickly and", "The app is simple and"]
_POS_END = ["it arrived the next day.", "everything was exactly as described.", "I will order again.",
            "the quality is better than expected.", "they sorted my question in minutes.",
            "the packaging was neat.", "highly recommended.", "good value for money.", "five stars from me.",
            "the size guide was accurate."]
_NEU_OPEN = ["Delivery took about a week and", "The product is fine but", "Average experience:",
             "Prices are okay and", "It does what it says, though", "Service was slow but"]
_NEU_END = ["nothing special.", "the box was a bit damaged.", "could be cheaper.", "I expected a little more.",
            "it was acceptable.", "the instructions could be clearer."]
_TITLES = {
    "neg": ["Terrible experience", "Never again", "Avoid", "Slow refund", "Very disappointed", "Scam", "Awful service",
            "Still waiting", "Lost parcel", "Rude staff"],
    "neu": ["Okay", "Average", "Mixed feelings", "Could be better", "Fine", "Not bad"],
    "pos": ["Great service", "Fast delivery", "Brilliant", "Good value", "Exactly as described", "Very happy",
            "Recommended", "Perfect", "Top shop", "Excellent"],
}
_REPLIES = ["Thank you for your feedback, we have passed it on to the team.",
            "We are sorry to hear about your experience. Please contact us at support so we can put this right.",
            "Thanks for the kind words! We hope to see you again soon.",
            "Hi, we have looked into your order and sent you an email with the details. Kind regards, the team.",
            "We apologise for the delay; the courier had problems in your area this week."]
_FIRST = "Anna Ben Carla Dev Ewa Femi Gosia Hugo Ines Jan Kemal Lena Mo Nora Otto Pia Rui Sara Tariq Uma".split()
_LAST = "Smith Nowak Müller Rossi Jones Kowalski Dubois Silva Okafor Berg Novak Costa Evans Popescu Lee".split()


def _pool(openers: list[str], endings: list[str]) -> list[str]:
    return [f"{o} {e}" for o in openers for e in endings]


POOLS = {"neg": _pool(_NEG_OPEN, _NEG_END), "neu": _pool(_NEU_OPEN, _NEU_END), "pos": _pool(_POS_OPEN, _POS_END)}
TONE = {1: "neg", 2: "neg", 3: "neu", 4: "pos", 5: "pos"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(title: str | None, body: str, rating: float | None, reply: str | None) -> str:
    """The same hash spiders.items.ReviewItem.content_hash computes."""
    parts = [title or "", body, "" if rating is None else f"{rating:g}", reply or ""]
    return sha256("\x1f".join(parts))


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


# --------------------------------------------------------------------------------------------------------------
# The generated world


@dataclass
class World:
    """Everything drawn at once (numpy arrays, one entry per business / source / review), before any row is written."""

    now: float
    start: float
    businesses: list[str]
    source_business: np.ndarray
    source_kind: list[str]
    source_name: list[str]
    source_url: list[str]
    source_created: np.ndarray
    source_lang: np.ndarray
    # reviews, in id order (first seen, then newest published first: the order a crawl stores them)
    src: np.ndarray
    published: np.ndarray
    published_null: np.ndarray
    first_seen: np.ndarray
    baseline: np.ndarray
    rating: np.ndarray  # 0 = no rating
    label: np.ndarray  # 0 neg, 1 neu, 2 pos, 3 mixed, 4 unscored
    score: np.ndarray
    lang: np.ndarray
    severity: np.ndarray  # 0 none, 1 normal, 2 high, 3 critical
    reply_at: np.ndarray  # published on the site; nan: no reply
    reply_seen: np.ndarray  # when a crawl saw it (≤ first_seen: in the first version)
    reply_idx: np.ndarray
    edit_at: np.ndarray  # the reviewer edited (rating changed); nan: never
    removed_at: np.ndarray
    handled_at: np.ndarray
    owner_label: np.ndarray  # -1 none
    n_sent: np.ndarray
    sent_offset: np.ndarray
    sentences: np.ndarray
    title_idx: np.ndarray
    author_idx: np.ndarray

    @property
    def n(self) -> int:
        return len(self.src)


LABEL_NAMES = ["neg", "neu", "pos", "mixed", "unscored"]
SEVERITY_NAMES = [None, "normal", "high", "critical"]


def build_world(n: int, businesses: int, sources: int, years: float, seed: int, now: datetime) -> World:
    rng = np.random.default_rng(seed)
    t_now = float(int(now.timestamp()) // HOUR * HOUR)
    t_start = t_now - years * 365.25 * DAY

    names = [f"Business {i:03d}" for i in range(businesses)]
    # every business has a source; the rest go to businesses by popularity (a few have many)
    popularity = rng.lognormal(0, 1.0, businesses)
    extra = rng.choice(businesses, sources - businesses, p=popularity / popularity.sum())
    source_business = np.sort(np.concatenate([np.arange(businesses), extra]))
    kinds = [KINDS[i][0] for i in rng.choice(len(KINDS), sources, p=[p for _, p in KINDS])]
    per_business: dict[int, int] = {}
    source_name, source_url = [], []
    for i, (b, kind) in enumerate(zip(source_business, kinds)):
        k = per_business[b] = per_business.get(b, 0) + 1
        slug = f"business-{b:03d}"
        source_name.append(f"{slug}-{kind}-{k}")
        source_url.append(_source_url(kind, slug, i))
    # 40 % of the sources were there from the start, the rest added over the years (their history came in at once)
    created = np.where(rng.random(sources) < 0.4, t_start + rng.random(sources) * 30 * DAY,
                       rng.uniform(t_start + 30 * DAY, t_now - 2 * DAY, sources))
    source_lang = rng.choice(len(LANGS), sources, p=[p for _, p in LANGS])
    weight = rng.lognormal(0, 1.1, sources)

    src = rng.choice(sources, n, p=weight / weight.sum()).astype(np.int32)
    # published: density growing linearly ×3 over the years (more reviews now than five years ago)
    g = 2.0
    u = rng.random(n)
    t = (-1 + np.sqrt(1 + 2 * g * u * (1 + g / 2))) / g
    published = np.floor(t_start + t * (t_now - t_start))
    lag = np.minimum(rng.exponential(4 * HOUR, n), 3 * DAY)  # crawled every few hours
    seen_new = np.minimum(published + lag, t_now - rng.random(n) * 600)
    seen_new = np.maximum(seen_new, published)
    base_at = created[src] + 300
    baseline = published < created[src]
    first_seen = np.floor(np.where(baseline, base_at, seen_new))
    published_null = rng.random(n) < 0.005  # a site that shows no date

    order = np.lexsort((-published, first_seen))
    src, published, first_seen, baseline, published_null = (
        a[order] for a in (src, published, first_seen, baseline, published_null))

    rating = rng.choice(5, n, p=RATING_P).astype(np.int8) + 1
    rating[rng.random(n) < 0.02] = 0  # feeds and some sites give no stars
    label = np.select([rating == 0, rating <= 2, rating == 3], [-1, 0, 1], 2).astype(np.int8)
    mixed = (rating >= 4) & (rng.random(n) < 0.012)
    label[mixed] = 3
    norate = rating == 0
    label[norate] = rng.choice([0, 1, 2, 4], norate.sum(), p=[0.25, 0.2, 0.5, 0.05])
    score = np.where(rating > 0, (rating - 3) / 2.0, 0.0)
    score[norate] = np.select([label[norate] == 0, label[norate] == 1], [-rng.uniform(0.35, 1, norate.sum()),
                              rng.uniform(-0.35, 0.35, norate.sum())], rng.uniform(0.35, 1, norate.sum()))
    score[mixed] = rng.uniform(-0.8, -0.2, mixed.sum())
    lang = np.where(rng.random(n) < 0.92, source_lang[src], 0).astype(np.int8)

    # alerted: negatives (and mixed) found as news, or in a first crawl's 72 h window
    news = ~baseline | (~published_null & (published >= first_seen - 72 * HOUR))
    alertable = ((label == 0) | (label == 3)) & news
    severity = np.zeros(n, np.int8)
    severity[alertable] = 1
    severity[alertable & (label == 0) & (rating == 1)] = 2
    severity[alertable & (label == 0) & (rng.random(n) < 0.03)] = 3

    # replies: more often to complaints; seen by the next crawl after they appear
    reply_p = np.select([label == 0, label == 1], [0.55, 0.35], 0.25)
    has_reply = rng.random(n) < reply_p
    reply_at = np.where(published_null, first_seen, published) + rng.lognormal(np.log(1.5 * DAY), 1.2, n)
    reply_seen = np.where(reply_at <= first_seen, first_seen, reply_at + rng.exponential(4 * HOUR, n))
    has_reply &= reply_seen <= t_now
    reply_at = np.where(has_reply, np.floor(reply_at), np.nan)
    reply_seen = np.where(has_reply, np.floor(reply_seen), np.nan)
    edit_at = first_seen + np.floor(rng.exponential(10 * DAY, n))
    edit_at = np.where((rng.random(n) < 0.03) & (edit_at <= t_now), edit_at, np.nan)
    removed_at = first_seen + np.floor(rng.uniform(DAY, 365 * DAY, n))
    removed_at = np.where((rng.random(n) < 0.01) & (removed_at <= t_now), removed_at, np.nan)
    removed_at = np.where(np.isnan(edit_at) | (removed_at > edit_at), removed_at, np.nan)
    handled_at = first_seen + np.floor(rng.uniform(HOUR, 5 * DAY, n))
    handled_at = np.where((severity > 0) & ~has_reply & (rng.random(n) < 0.35) & (handled_at <= t_now), handled_at,
                          np.nan)
    owner_label = np.where(rng.random(n) < 0.003, rng.integers(0, 3, n), -1).astype(np.int8)

    # bodies: 1 + geometric sentences (median ~3, ~250-300 characters), of the review's tone
    n_sent = np.minimum(1 + rng.geometric(0.33, n), 25).astype(np.int32)
    sent_offset = np.concatenate([[0], np.cumsum(n_sent)]).astype(np.int64)
    sentences = rng.integers(0, 1 << 30, int(sent_offset[-1]), dtype=np.int64)
    return World(
        now=t_now, start=t_start, businesses=names, source_business=source_business, source_kind=kinds,
        source_name=source_name, source_url=source_url, source_created=created, source_lang=source_lang,
        src=src, published=published, published_null=published_null, first_seen=first_seen, baseline=baseline,
        rating=rating, label=label, score=np.round(score, 4), lang=lang, severity=severity, reply_at=reply_at,
        reply_seen=reply_seen, reply_idx=rng.integers(0, len(_REPLIES), n), edit_at=edit_at, removed_at=removed_at,
        handled_at=handled_at, owner_label=owner_label, n_sent=n_sent, sent_offset=sent_offset, sentences=sentences,
        title_idx=rng.integers(0, 1 << 20, n), author_idx=rng.integers(0, len(_FIRST) * len(_LAST), n),
    )


def _source_url(kind: str, slug: str, i: int) -> str:
    return {
        "trustpilot": f"https://www.trustpilot.com/review/{slug}-{i}.example",
        "yelp": f"https://www.yelp.com/biz/{slug}-{i}",
        "bbb": f"https://www.bbb.org/us/ny/new-york/profile/shops/{slug}-{i}/customer-reviews",
        "consumeraffairs": f"https://www.consumeraffairs.com/shopping/{slug}-{i}.html",
        "ceneo": f"https://www.ceneo.pl/{10_000_000 + i}",
        "skroutz": f"https://www.skroutz.gr/shop/{i}/{slug}/reviews",
        "schema_org": f"https://{slug}-{i}.example/reviews",
    }[kind]


class Texts:
    """A review's text at any point of its history, rebuilt from the world's arrays."""

    def __init__(self, world: World):
        self.w = world

    def tone(self, i: int) -> str:
        label = self.w.label[i]
        return "neg" if label == 0 else "neu" if label in (1, 4) else "pos"

    def original_rating(self, i: int) -> float | None:
        r = int(self.w.rating[i])
        if r == 0:
            return None
        if not np.isnan(self.w.edit_at[i]):  # an edit changed the stars: 1★ became 3★, 5★ became 4★ …
            return float(max(1, r - 2) if r >= 3 else min(5, r + 1))
        return float(r)

    def at(self, i: int, *, edited: bool, replied: bool) -> tuple[float | None, str, str, str | None]:
        w = self.w
        tone = self.tone(i)
        pool = POOLS[tone]
        a, b = w.sent_offset[i], w.sent_offset[i + 1]
        body = " ".join(pool[s % len(pool)] for s in w.sentences[a:b].tolist())
        rating: float | None = float(w.rating[i]) if w.rating[i] else None
        if not np.isnan(w.edit_at[i]):
            if edited:
                body += " Update: they got in touch and we sorted it out in the end."
            else:
                rating = self.original_rating(i)
        titles = _TITLES[tone]
        title = titles[w.title_idx[i] % len(titles)]
        reply = _REPLIES[w.reply_idx[i]] if replied else None
        return rating, title, body, reply

    def author(self, i: int) -> str:
        k = int(self.w.author_idx[i])
        return f"{_FIRST[k % len(_FIRST)]} {_LAST[k // len(_FIRST)]}"

    def external_id(self, i: int) -> str:
        return hashlib.blake2b(f"r{i}".encode(), digest_size=12).hexdigest()


def review_rows(world: World) -> Iterator[dict[str, Any]]:
    w, texts = world, Texts(world)
    for i in range(w.n):
        s = int(w.src[i])
        replied = not np.isnan(w.reply_seen[i])
        rating, title, body, reply = texts.at(i, edited=True, replied=replied)
        external_id = texts.external_id(i)
        label = int(w.label[i])
        scored_lang = LANGS[w.lang[i]][0]
        first_seen = utc(w.first_seen[i])
        last_seen = w.removed_at[i] if not np.isnan(w.removed_at[i]) else max(w.first_seen[i], w.now - 6 * HOUR)
        if label == 3:
            why = "4-5★ but the text is negative (mis-click or sarcasm?)"
        elif rating is not None and label != 4:
            why = f"{rating:g}★ rating"
        elif label == 4:
            why = "no words to score"
        else:
            why = body[:80]
        owner = int(w.owner_label[i])
        yield {
            "id": i + 1,
            "source_id": s + 1,
            "external_id": external_id,
            "url": f"{w.source_url[s]}#review-{external_id}",
            "author": texts.author(i),
            "rating": rating,
            "title": title,
            "body": body,
            "published_at": None if w.published_null[i] else utc(w.published[i]),
            "language": scored_lang,
            "reply_body": reply,
            "reply_published_at": utc(w.reply_at[i]) if replied else None,
            "content_hash": content_hash(title, body, rating, reply),
            "first_seen_at": first_seen,
            "last_seen_at": utc(last_seen),
            "baseline": bool(w.baseline[i]),
            "sentiment_label": LABEL_NAMES[label],
            "sentiment_score": None if label == 4 else float(w.score[i]),
            "sentiment_lang": scored_lang,
            "sentiment_why": why,
            "severity": SEVERITY_NAMES[w.severity[i]],
            "scored_at": utc(w.first_seen[i] + 5),
            "status": "handled" if not np.isnan(w.handled_at[i]) else "new",
            "removed_at": None if np.isnan(w.removed_at[i]) else utc(w.removed_at[i]),
            "handled_at": None if np.isnan(w.handled_at[i]) else utc(w.handled_at[i]),
            "handled_note": "called the customer" if not np.isnan(w.handled_at[i]) else None,
            "owner_label": None if owner < 0 else ("neg", "neu", "pos")[owner],
            "owner_labelled_at": None if owner < 0 else first_seen + timedelta(days=1),
        }


def later_versions(world: World) -> list[tuple[float, int, int]]:
    """(seen_at, review index, event) of every version after the first, in the order seen: 0 reply, 1 edit, 2 removed."""
    w = world
    later: list[tuple[float, int, int]] = []
    for i in np.flatnonzero(~np.isnan(w.reply_seen) & (w.reply_seen > w.first_seen)).tolist():
        later.append((float(w.reply_seen[i]), i, 0))
    for i in np.flatnonzero(~np.isnan(w.edit_at)).tolist():
        later.append((float(w.edit_at[i]), i, 1))
    for i in np.flatnonzero(~np.isnan(w.removed_at)).tolist():
        later.append((float(w.removed_at[i]), i, 2))
    later.sort()
    return later


def _versions_in_order(world: World, later: list[tuple[float, int, int]]) -> Iterator[tuple[float, int, int]]:
    firsts = ((float(world.first_seen[i]), i, -1) for i in range(world.n))
    return heapq.merge(firsts, later)


def later_version_ids(world: World, later: list[tuple[float, int, int]]) -> dict[tuple[int, int], int]:
    """(review index, event) → the id its version row gets (ids follow the order versions were seen)."""
    return {(i, event): number for number, (_, i, event) in enumerate(_versions_in_order(world, later), start=1)
            if event >= 0}


def version_rows(world: World, later: list[tuple[float, int, int]]) -> Iterator[dict[str, Any]]:
    """Every review's versions in the order they were seen: the first, then replies, edits and removals."""
    w, texts = world, Texts(world)
    for number, (seen, i, event) in enumerate(_versions_in_order(world, later), start=1):
        replied = not np.isnan(w.reply_seen[i]) and w.reply_seen[i] <= seen
        edited = not np.isnan(w.edit_at[i]) and w.edit_at[i] <= seen
        rating, title, body, reply = texts.at(i, edited=edited, replied=replied)
        yield {
            "id": number,
            "review_id": i + 1,
            "seen_at": utc(seen),
            "change": {-1: "first", 0: "edited", 1: "edited", 2: "removed"}[event],
            "content_hash": content_hash(title, body, rating, reply),
            "snippet_hash": None if event == 2 else sha256(f"{i}:{seen}"),
            "rating": rating,
            "title": title,
            "body": body,
            "reply_body": reply,
        }


def delivery_rows(world: World, version_ids: dict[tuple[int, int], int]) -> Iterator[dict[str, Any]]:
    """The outbox as years of alerting leave it: alerts, their updates and reminders, spikes, source health.

    Keys as monitor/service/followups.py writes them, so a crawl finds nothing left to queue for the past.
    """
    w = world
    rng = np.random.default_rng(7)
    events: list[tuple[float, int, str, int, Any]] = []  # (created, order, kind, review index or source, extra)
    alerted = np.flatnonzero(w.severity > 0)
    for i in alerted.tolist():
        created = float(w.first_seen[i] + 60)
        events.append((created, 0, "alert", i, None))
        unanswered = np.isnan(w.reply_seen[i]) or w.reply_seen[i] > w.first_seen[i] + 2 * DAY
        handled_late = np.isnan(w.handled_at[i]) or w.handled_at[i] > w.first_seen[i] + 2 * DAY
        if unanswered and handled_late and w.first_seen[i] + 2 * DAY <= w.now:
            events.append((float(w.first_seen[i] + 2 * DAY + 120), 1, "reminder", i, None))
        if not np.isnan(w.reply_seen[i]) and w.reply_seen[i] > created:
            events.append((float(w.reply_seen[i] + 30), 2, "update", i, (version_ids[i, 0], "the business replied on the site")))
        if not np.isnan(w.edit_at[i]) and w.edit_at[i] > created:
            events.append((float(w.edit_at[i] + 30), 2, "update", i, (version_ids[i, 1], "rating changed")))
        if not np.isnan(w.removed_at[i]):
            events.append((float(w.removed_at[i] + 30), 2, "update", i, (version_ids[i, 2], "the review was removed from the site")))
    sources = len(w.source_name)
    for s in rng.choice(sources, sources // 10, replace=False).tolist():  # a tenth of the sources failed once
        bad = float(rng.uniform(w.source_created[s] + WEEK, w.now - WEEK))
        events.append((bad, 3, "health", s, "bad"))
        events.append((bad + float(rng.uniform(HOUR, 3 * DAY)), 3, "health", s, "recovered"))
    for s in rng.choice(sources, 300).tolist():  # spikes
        events.append((float(rng.uniform(w.source_created[s] + 8 * DAY, w.now - DAY)), 4, "spike", s, None))
    events.sort(key=lambda e: e[:4])
    alert_ids: dict[int, int] = {}
    last_health: dict[int, int] = {}
    for number, (created, _, kind, ref, extra) in enumerate(events, start=1):
        at = utc(created)
        row = {"id": number, "kind": kind, "destination": DESTINATION, "channel": None, "mention": None,
               "parent_id": None, "payload": None, "status": "sent", "attempts": 1, "next_attempt_at": at,
               "last_error": None, "remote_id": f"wh-{number}", "created_at": at, "sent_at": utc(created + 2),
               "review_id": None}
        if kind == "alert":
            alert_ids[ref] = number
            row.update(dedupe_key=f"alert:{ref + 1}", review_id=ref + 1)
        elif kind == "reminder":
            row.update(dedupe_key=f"reminder:{ref + 1}", review_id=ref + 1, parent_id=alert_ids[ref])
        elif kind == "update":
            version, change = extra
            row.update(dedupe_key=f"update:{ref + 1}:{version}", review_id=ref + 1, parent_id=alert_ids[ref],
                       payload={"changes": [change], "settled": change != "rating changed"})
        elif kind == "health":
            name = w.source_name[ref]
            row.update(dedupe_key=f"health:{name}:{extra}:{last_health.get(ref, 0)}",
                       payload={"event": extra, "source": name, "business": w.businesses[w.source_business[ref]]})
            last_health[ref] = number
        else:
            name = w.source_name[ref]
            row.update(dedupe_key=f"spike:source:{name}:{at:%Y-%m-%dT%H}",
                       payload={"source": name, "count": 6, "mean": 0.4, "sd": 0.5, "threshold": 1.9})
        yield row


def crawl_run_rows(world: World, days: int = 30) -> Iterator[dict[str, Any]]:
    """Every source crawled every 6 hours for the last `days` days (older runs: see RESULTS.md, not generated)."""
    w = world
    number = 0
    for step in range(days * 4, 0, -1):
        started = w.now - step * 6 * HOUR
        for s in range(len(w.source_name)):
            if w.source_created[s] > started:
                continue
            number += 1
            failed = (number * 2654435761) % 997 == 0
            stats = {"repwatch/items": 20, "repwatch/new": 1, "repwatch/changed": 0, "repwatch/stopped_at_known": 1,
                     "downloader/request_count": 3, "downloader/response_status_count/200": 2,
                     "downloader/response_status_count/304": 1}
            yield {"id": number, "source_id": s + 1, "started_at": utc(started), "finished_at": utc(started + 7),
                   "requests": 3, "pages": 1, "items": 20, "new": 1, "changed": 0, "errors": int(failed),
                   "blocked": None, "outcome": "failed" if failed else "ok",
                   "error": "HTTP 503 on page 1" if failed else None, "stats": stats}


# --------------------------------------------------------------------------------------------------------------
# Writing it: Core executemany on SQLite, COPY on PostgreSQL


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_rows(engine, table, rows: Iterator[dict[str, Any]]) -> int:
    """Insert `rows` into `table` (dicts with every column, or the column's default where a later migration added
    it: the generator need not know every column): COPY on PostgreSQL, executemany on SQLite."""
    count = 0
    defaults = {c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
                for c in table.columns}
    rows = ({**defaults, **row} for row in rows)
    if engine.dialect.name == "postgresql":
        columns = [c.name for c in table.columns]
        json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
        raw = engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([json.dumps(row[c]) if c in json_columns and row[c] is not None else row[c]
                                        for c in columns])
                        count += 1
            raw.driver_connection.commit()
        finally:
            raw.close()
        return count
    # The statement SQLAlchemy compiles and each column's own bind processor (UTC timestamps in SQLAlchemy's
    # SQLite format, JSON, booleans), applied here: SQLAlchemy's per-row parameter handling took more time than
    # SQLite's executemany.
    dialect = engine.dialect
    compiled = table.insert().compile(dialect=dialect)
    names = list(compiled.positiontup)
    processors = [table.c[n].type._cached_bind_processor(dialect) for n in names]
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        for chunk in _chunks(rows, 100_000):
            values = [tuple(p(row[n]) if p is not None and row[n] is not None else row[n]
                            for n, p in zip(names, processors)) for row in chunk]
            connection.executemany(compiled.string, values)
            connection.commit()
            count += len(chunk)
    finally:
        raw.close()
    return count


def generate(engine, world: World, log: Callable[[str], None]) -> dict[str, Any]:
    from sqlalchemy import text

    from models.tables import (
        Business,
        CrawlRun,
        Delivery,
        Review,
        ReviewVersion,
        Source,
    )

    w = world
    timings: dict[str, Any] = {}
    started = time.perf_counter()
    business_rows = ({"id": b + 1, "name": name, "created_at": utc(w.start)} for b, name in enumerate(w.businesses))
    write_rows(engine, Business.__table__, business_rows)
    last_ok = w.now - (w.now % (6 * HOUR)) + 7

    def sources() -> Iterator[dict[str, Any]]:
        for s, name in enumerate(w.source_name):
            yield {"id": s + 1, "business_id": int(w.source_business[s]) + 1, "name": name, "kind": w.source_kind[s],
                   "url": w.source_url[s], "state": "ok", "last_error": None, "last_success_at": utc(last_ok),
                   "consecutive_failures": 0, "baseline_at": utc(w.source_created[s] + 300),
                   "created_at": utc(w.source_created[s])}

    write_rows(engine, Source.__table__, sources())
    later = later_versions(w)
    for name, table, rows in (
        ("review", Review.__table__, review_rows(w)),
        ("review_version", ReviewVersion.__table__, version_rows(w, later)),
        ("delivery", Delivery.__table__, delivery_rows(w, later_version_ids(w, later))),
        ("crawl_run", CrawlRun.__table__, crawl_run_rows(w)),
    ):
        t0 = time.perf_counter()
        count = write_rows(engine, table, rows)
        timings[name] = {"rows": count, "seconds": round(time.perf_counter() - t0, 1)}
        log(f"  {name}: {count:,} rows in {timings[name]['seconds']} s")
    if engine.dialect.name == "postgresql":
        t0 = time.perf_counter()
        with engine.begin() as connection:
            for table in ("business", "source", "review", "review_version", "delivery", "crawl_run"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"))
        raw = engine.raw_connection()
        try:
            raw.driver_connection.autocommit = True
            raw.driver_connection.execute("VACUUM ANALYZE")  # what autovacuum does to tables grown over years
        finally:
            raw.close()
        timings["vacuum_analyze_seconds"] = round(time.perf_counter() - t0, 1)
    timings["total_seconds"] = round(time.perf_counter() - started, 1)
    return timings


# --------------------------------------------------------------------------------------------------------------
# Databases


@dataclass
class Database:
    kind: str
    url: str
    path: Path | None  # SQLite file


def create_database(kind: str, workdir: Path, admin_url: str, tag: str) -> Database:
    if kind == "sqlite":
        path = workdir / f"repwatch-{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return Database(kind, f"sqlite:///{path}", path)
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    _admin(admin_url, f'CREATE DATABASE "{BENCH_DB}"')
    base = admin_url.rsplit("/", 1)[0]
    return Database(kind, f"{base}/{BENCH_DB}", None)


def drop_database(database: Database, admin_url: str) -> None:
    if database.kind == "postgresql":
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    elif database.path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database.path}{suffix}").unlink(missing_ok=True)


def _admin(admin_url: str, statement: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database or "postgres",
                         autocommit=True) as connection:
        connection.execute(statement)


def database_size(database: Database, engine) -> dict[str, Any]:
    from sqlalchemy import text

    tables = ("business", "source", "review", "review_version", "delivery", "crawl_run")
    with engine.connect() as connection:
        rows = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        if database.kind == "sqlite":
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            total = database.path.stat().st_size
            per_table = {}
            try:  # dbstat is compiled into most SQLite builds (Debian's and Python's)
                for name, size in connection.execute(text(
                        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")):
                    per_table[name] = size
            except Exception:  # noqa: BLE001 - optional detail
                pass
        else:
            total = connection.execute(text("SELECT pg_database_size(current_database())")).scalar()
            per_table = {t: connection.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar() for t in tables}
    ours = sum(per_table.get(t, 0) for t in tables) if database.kind == "postgresql" else total
    return {"rows": rows, "bytes": total, "tables_bytes": ours, "per_table": per_table,
            "bytes_per_review": round(ours / rows["review"]) if rows["review"] else None}


# --------------------------------------------------------------------------------------------------------------
# Config for the CLI runs: every generated business and source, plus the bench site's source for the crawl


def write_config(path: Path, database: Database, world: World, data_dir: Path,
                 crawl_source: tuple[str, str] | None = None, pages: int = 100) -> Path:
    businesses: dict[int, dict[str, Any]] = {}
    for s, name in enumerate(world.source_name):
        b = int(world.source_business[s])
        entry = businesses.setdefault(b, {"name": world.businesses[b], "notify": [DESTINATION], "sources": []})
        entry["sources"].append({"name": name, "kind": world.source_kind[s], "url": world.source_url[s]})
    listed = [businesses[b] for b in sorted(businesses)]
    if crawl_source is not None:
        listed.append({"name": "Bench Co", "notify": [DESTINATION],
                       "sources": [{"name": crawl_source[0], "kind": "trustpilot", "url": crawl_source[1]}]})
    config = {
        "database": database.url,
        "data_dir": str(data_dir),
        "crawl": {"obey_robots": True, "max_pages": pages + 10, "polite": False, "concurrency": 16},
        "notifiers": {DESTINATION: {"kind": "webhook", "url": "http://127.0.0.1:9/repwatch-bench"}},
        "businesses": listed,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


# --------------------------------------------------------------------------------------------------------------
# Measuring


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, Any]:
    """First call (caches cold-ish) and the median of `repeat` more."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"first_s": round(first, 4), "median_s": round(statistics.median(times), 4) if times else None,
            "min_s": round(min(times), 4) if times else None, "max_s": round(max(times), 4) if times else None,
            "result": result}


def run_cli(argv: list[str], timeout: float = 600) -> tuple[float, int, str, str]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"})
    return time.perf_counter() - t0, done.returncode, done.stdout, done.stderr


def queries(database: Database, world: World, config: Path, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Benchmark 4 (a) digest, (b) `reviews --negative --since 7d`, (c) storing a crawl's new reviews."""
    from sqlalchemy import func, select

    from alerts.digest import IsoWeek, build_digest
    from models.db import connect, session_factory
    from models.tables import Business, Review, Source
    from monitor.config import load_config
    from monitor.topics import TopicMatcher

    loaded = load_config(config)
    engine = connect(database.url)
    sessions = session_factory(engine)
    results: dict[str, Any] = {}
    command = repwatch_command() or []
    now = datetime.now(UTC)
    week = IsoWeek.last_complete(now)
    with sessions() as session:
        per_business = session.execute(
            select(Business.name, func.count(Review.id)).join(Source, Source.business_id == Business.id)
            .join(Review, Review.source_id == Source.id).group_by(Business.name).order_by(func.count(Review.id).desc())
        ).all()
    if not per_business:
        return {"skipped": "no reviews"}
    chosen = {"largest": per_business[0], "median": per_business[len(per_business) // 2]}
    topics = TopicMatcher.from_config(loaded)

    # (a) the digest: every number of one business's week (what --preview and --send compute), then the whole CLI
    digest: dict[str, Any] = {"week": week.label}
    for role, (name, count) in chosen.items():
        def build(name=name) -> dict[str, int]:
            with sessions() as session:
                d = build_digest(session, name, week, topics=topics)
            return {"new": d.new_reviews, "negatives": d.negatives_total, "unanswered": d.unanswered_total}

        measured = timed(build, repeat)
        preview = Path(tempfile.gettempdir()) / f"repwatch-bench-digest-{os.getpid()}.html"
        cli_s, code, _, err = run_cli([*command, "digest", "--config", str(config), "--business", name,
                                       "--week", week.label, "--preview", str(preview)])
        preview.unlink(missing_ok=True)
        digest[role] = {"business": name, "reviews": count, "build_digest": measured,
                        "cli_preview_s": round(cli_s, 3), "cli_exit": code, "cli_error": err.strip()[-300:] if code else None}
        log(f"  digest {role} ({name}, {count:,} reviews): build {measured['median_s']} s "
            f"(first {measured['first_s']}), CLI --preview {cli_s:.2f} s")
    results["digest"] = digest

    # (b) `repwatch reviews …`: the verb run in this process (its statements captured), each statement alone again,
    # then the CLI as a user runs it (a new process: interpreter, imports, config, migrations check, query, table)
    # Every CLI verb validates config.yaml first: with 1,000 sources that is a cost of its own, so the verb also runs
    # with a config naming only the database.
    minimal = config.with_name("config-minimal.yaml")
    minimal.write_text(yaml.safe_dump({"database": database.url, "data_dir": str(config.parent / "data")}))
    t0 = time.perf_counter()
    load_config(config)
    results["load_full_config_s"] = round(time.perf_counter() - t0, 3)
    reviews: dict[str, Any] = {}
    for name, flags in (("negative_since_7d", ["--negative", "--since", "7d"]), ("newest", []),
                        ("unanswered", ["--unanswered"]), ("negative", ["--negative"])):
        statement, parameters, in_process_s = cli_statement(minimal, ["reviews", *flags])

        def query(statement=statement, parameters=parameters) -> int:
            with engine.connect() as connection:
                return len(connection.exec_driver_sql(statement, parameters).fetchall())

        measured = timed(query, repeat)
        measured["in_process_verb_s"] = round(in_process_s, 3)
        measured["statement"] = " ".join(statement.split())
        measured["plan"] = plan_of(engine, statement, parameters)
        runs = [run_cli([*command, "reviews", "--config", str(config), *flags]) for _ in range(3)]
        bare = [run_cli([*command, "reviews", "--config", str(minimal), *flags]) for _ in range(3)]
        reviews[name] = {"query": measured, "cli_s": round(statistics.median(r[0] for r in runs), 3),
                         "cli_minimal_config_s": round(statistics.median(r[0] for r in bare), 3),
                         "cli_exit": runs[0][1], "cli_error": runs[0][3].strip()[-300:] if runs[0][1] else None}
        log(f"  reviews {' '.join(flags) or '(newest)'}: query {measured['median_s']} s (first {measured['first_s']},"
            f" {measured['result']} rows), CLI {reviews[name]['cli_s']} s "
            f"({reviews[name]['cli_minimal_config_s']} s with a database-only config)")
    results["reviews"] = reviews

    # (c) a crawl's new reviews through the real path: what the crawl child and the crawl verb do per run
    results["insert"] = inserts(sessions, loaded, world, repeat, log)
    engine.dispose()
    return results


def cli_statement(config: Path, argv: list[str]) -> tuple[str, Any, float]:
    """Run a `repwatch` verb in this process; the statement it read reviews with (parameters bound) and its time."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from typer.testing import CliRunner

    from monitor.cli import app

    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM review" in statement:
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        t0 = time.perf_counter()
        result = CliRunner().invoke(app, [argv[0], "--config", str(config), "--format", "json", *argv[1:]])
        seconds = time.perf_counter() - t0
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    if result.exit_code != 0 or not seen:
        raise RuntimeError(f"repwatch {' '.join(argv)} failed: {result.output[-500:]}")
    return seen[-1][0], seen[-1][1], seconds


def inserts(sessions, loaded, world: World, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    from sqlalchemy import func, select

    from models.store import known_external_ids, store_reviews
    from models.tables import Review
    from monitor.service.followups import queue_followups
    from monitor.service.scoring import score_pending
    from monitor.sentiment import Scorer
    from spiders.items import ReviewItem
    from spiders.pipelines.store import BATCH_SIZE

    with sessions() as session:
        source_id, stored = session.execute(
            select(Review.source_id, func.count()).group_by(Review.source_id).order_by(func.count().desc()).limit(1)
        ).one()
    t0 = time.perf_counter()
    scorer = Scorer.from_config(loaded)
    scorer_s = time.perf_counter() - t0
    rng = np.random.default_rng(11)
    out: dict[str, Any] = {"source_id": source_id, "source_reviews": stored, "scorer_setup_s": round(scorer_s, 3),
                           "store_batch_size": BATCH_SIZE}
    run = 0
    for size in (20, 200):
        samples: dict[str, list[float]] = {"known_ids": [], "store": [], "score": [], "followups": []}
        for _ in range(max(repeat, 1)):
            run += 1
            now = datetime.now(UTC)
            items = []
            for j in range(size):
                rating = float(rng.choice(5, p=RATING_P) + 1)
                tone = TONE[int(rating)]
                body = " ".join(POOLS[tone][k % len(POOLS[tone])] for k in rng.integers(0, 1 << 30, 3).tolist())
                items.append(ReviewItem(
                    external_id=f"bench-{run}-{j}", url=f"https://bench.example/r/{run}-{j}", body=body, rating=rating,
                    author="Bench Reviewer", title=_TITLES[tone][j % len(_TITLES[tone])],
                    published_at=now - timedelta(minutes=5 * j + 1), language="en", snippet_hash=sha256(f"{run}-{j}"),
                ))
            t0 = time.perf_counter()
            with sessions() as session:
                known_external_ids(session, source_id)
            samples["known_ids"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for k in range(0, size, BATCH_SIZE):  # the store pipeline: one transaction per batch
                with sessions.begin() as session:
                    store_reviews(session, source_id, items[k:k + BATCH_SIZE])
            samples["store"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            scored, _ = score_pending(sessions, loaded, scorer)
            samples["score"].append(time.perf_counter() - t0)
            assert scored == size, (scored, size)
            t0 = time.perf_counter()
            queue_followups(sessions, loaded)
            samples["followups"].append(time.perf_counter() - t0)
        medians = {k: round(statistics.median(v), 4) for k, v in samples.items()}
        medians["total"] = round(sum(medians.values()), 4)
        out[str(size)] = {"median_s": medians, "max_s": {k: round(max(v), 4) for k, v in samples.items()}}
        log(f"  insert {size}: " + ", ".join(f"{k} {v} s" for k, v in medians.items()))
    return out


def plan_of(engine, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL, of one captured statement."""
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    with engine.connect() as connection:
        return [str(row[-1]) for row in connection.exec_driver_sql(prefix + statement, parameters)]


# --------------------------------------------------------------------------------------------------------------
# Benchmark 5: one real `repwatch crawl` of the bench site, peak RSS per process of its tree


@dataclass
class TreeRun:
    returncode: int
    seconds: float
    peaks_mb: dict[str, float]  # "cli" / "crawl child" / other → largest VmHWM seen
    stdout: str
    stderr: str


def run_tree(argv: list[str], timeout: float) -> TreeRun:
    """Run `argv`; wall time and each process's peak RSS (bench_crawl's VmHWM sampler, every 20 ms, by role)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        peaks: dict[int, int] = {}
        roles: dict[int, str] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                _tree_hwm_kib(child.pid, peaks)
                for pid in peaks.keys() - roles.keys():
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    except OSError:
                        continue
                    roles[pid] = "cli" if pid == child.pid else "crawl child" if "spiders.runner" in cmdline else cmdline[:60]

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        finally:
            done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        by_role: dict[str, float] = {}
        for pid, kib in peaks.items():
            role = roles.get(pid, "?")
            by_role[role] = max(by_role.get(role, 0.0), round(kib / 1024, 1))
        out.seek(0)
        err.seek(0)
        return TreeRun(code, seconds, by_role, out.read().decode("utf-8", "replace"),
                        err.read().decode("utf-8", "replace"))


def crawl_once(database: Database, world: World, workdir: Path, url: str, pages: int, tag: str,
               timeout: float) -> dict[str, Any]:
    name = f"bench-crawl-{tag}"
    data_dir = workdir / f"data-{tag}"
    config = write_config(workdir / f"config-crawl-{tag}.yaml", database, world, data_dir, (name, url), pages)
    command = repwatch_command() or []
    run = run_tree([*command, "crawl", "--config", str(config), "--source", name, "--no-alerts"], timeout)
    from sqlalchemy import func, select

    from models.db import connect
    from models.tables import CrawlRun, Review, Source

    engine = connect(database.url)
    with engine.connect() as connection:
        stored = connection.execute(select(func.count(Review.id)).join(Source).where(Source.name == name)).scalar()
        # the crawl child's own span (fetch, parse, store), from its CrawlRun; the rest of the wall time is the
        # verb's start, config, scoring, follow-ups
        started, finished, stats = connection.execute(
            select(CrawlRun.started_at, CrawlRun.finished_at, CrawlRun.stats).join(Source).where(Source.name == name)
        ).one()
    engine.dispose()
    child_s = (finished - started).total_seconds() if started and finished else None
    return {"exit": run.returncode, "wall_s": round(run.seconds, 2), "crawl_child_s": round(child_s, 2) if child_s else None,
            "peak_rss_mb": run.peaks_mb, "stored": stored, "run_stats_bytes": len(json.dumps(stats or {})),
            "summary": run.stdout.strip().splitlines()[-1:] if run.stdout.strip() else [],
            "error": run.stderr.strip()[-400:] if run.returncode else None}


# --------------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import sqlite3

    import sqlalchemy

    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
                            "loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
        info["ram_gb"] = round(int(meminfo.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=int, default=1_000_000, help="stored reviews for benchmark 4 (and the sweep's top)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--businesses", type=int, default=200)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions after the first call")
    parser.add_argument("--sweep", default="0,0.25,0.5,1",
                        help="benchmark 5: database sizes as fractions of --reviews (or absolute counts ≥ 2); '' skips it")
    parser.add_argument("--crawl-pages", type=int, default=50, help="pages × 20 reviews the crawled bench site has")
    parser.add_argument("--skip-queries", action="store_true", help="benchmark 5 only")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL maintenance database (CREATE DATABASE)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the database (and the temp dir) at the end")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/out/scale-<database>.json)")
    args = parser.parse_args()
    kind = "postgresql" if args.database == "postgres" else "sqlite"
    out_path = args.out or OUT / f"scale-{args.database}.json"

    def log(message: str) -> None:
        print(message, flush=True)

    from models.db import connect, migrate

    now = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="repwatch-scale-"))
    result: dict[str, Any] = {"database": kind, "reviews": args.reviews, "businesses": args.businesses,
                              "sources": args.sources, "years": args.years, "seed": args.seed,
                              "started": now.isoformat(timespec="seconds"), "machine": machine()}
    if kind == "postgresql":
        result["machine"]["postgresql"] = _server_version(args.admin_url)
    sizes = []
    for part in filter(None, (p.strip() for p in args.sweep.split(","))):
        value = float(part)
        sizes.append(int(value * args.reviews) if value <= 1 else int(value))
    sizes = sorted(set(sizes), reverse=True)
    database: Database | None = None
    site = build_site(args.crawl_pages) if sizes else {}
    try:
        from demo.server import SiteServer

        with SiteServer(site, robots_txt=ROBOTS) as server:
            url = server.url_for(start_path())
            runs = ([args.reviews] if not args.skip_queries else []) + [s for s in sizes if args.skip_queries or s != args.reviews]
            crawls: dict[str, Any] = {}
            for size in runs:
                database = create_database(kind, workdir, args.admin_url, str(size))
                engine = connect(database.url)
                migrate(engine)  # the real schema: the project's own Alembic migrations
                log(f"{kind}: generating {size:,} reviews ({args.businesses} businesses, {args.sources} sources)")
                t0 = time.perf_counter()
                world = build_world(size, args.businesses, args.sources, args.years, args.seed, now)
                world_s = time.perf_counter() - t0
                timings = generate(engine, world, log)
                timings["world_seconds"] = round(world_s, 1)
                log(f"  generated in {timings['total_seconds']} s")
                if size == args.reviews and not args.skip_queries:
                    result["generate"] = timings
                    result["size"] = database_size(database, engine)
                    log(f"  size: {result['size']['tables_bytes'] / 1e6:.0f} MB, "
                        f"{result['size']['bytes_per_review']} bytes per review")
                    engine.dispose()
                    config = write_config(workdir / "config.yaml", database, world, workdir / "data")
                    result["queries"] = queries(database, world, config, args.repeat, log)
                    result["size_after"] = database_size(database, connect(database.url))
                else:
                    engine.dispose()
                if size in sizes:
                    crawled = crawl_once(database, world, workdir, url, args.crawl_pages, str(size), args.timeout)
                    crawls[str(size)] = crawled
                    log(f"  crawl at {size:,} reviews: exit {crawled['exit']}, {crawled['wall_s']} s "
                        f"(crawl child {crawled['crawl_child_s']} s), "
                        f"peak RSS {crawled['peak_rss_mb']}, stored {crawled['stored']}"
                        + (f"\n    {crawled['error']}" if crawled["error"] else ""))
                if not args.keep:
                    drop_database(database, args.admin_url)
                    database = None
            result["crawl"] = {"pages": args.crawl_pages, "reviews": args.crawl_pages * 20, "by_size": crawls}
    finally:
        if database is not None and not args.keep:
            drop_database(database, args.admin_url)
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept: {workdir}" + (f" and database {BENCH_DB}" if kind == "postgresql" else ""))
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"written to {out_path}")
    return 0


def _server_version(admin_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database or "postgres") as c:
        return c.execute("SHOW server_version").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
