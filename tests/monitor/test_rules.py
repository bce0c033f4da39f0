"""Alert rules: which scored reviews become alerts, and how serious they are."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.rules import decide

SEEN = datetime(2026, 11, 20, 12, tzinfo=UTC)
WINDOW = timedelta(hours=72)


def verdict(label="neg", rating=None, score=None, published=SEEN - timedelta(hours=1), baseline=False):
    return decide(label=label, rating=rating, score=score, published_at=published, first_seen_at=SEEN,
                  baseline=baseline, baseline_window=WINDOW)


def test_only_negative_reviews_alert():
    assert verdict("neg", rating=2).alert
    assert not verdict("neu", rating=3).alert
    assert not verdict("pos", rating=5).alert
    assert not verdict("unscored").alert


def test_a_first_crawl_alerts_only_inside_the_baseline_window():
    assert verdict(baseline=True, published=SEEN - timedelta(hours=71)).alert
    old = verdict(baseline=True, published=SEEN - timedelta(hours=73))
    assert not old.alert and "first crawl" in old.reason
    assert not verdict(baseline=True, published=None).alert  # undated history cannot be shown to be recent
    assert verdict(baseline=False, published=SEEN - timedelta(days=400)).alert  # found later: it is news


def test_one_star_or_strongly_negative_text_is_high_severity():
    assert verdict(rating=1).severity == "high"
    assert verdict(rating=2).severity == "normal"
    assert verdict(score=-0.8).severity == "high"
    assert verdict(score=-0.2).severity == "normal"
