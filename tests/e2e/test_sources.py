"""Sources that go wrong, end to end: blocked by a bot wall, broken by a new layout, reviews taken down."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from models.tables import Review, Source
from tests.e2e.conftest import DOMAIN, site_review

CHALLENGE = (Path(__file__).resolve().parents[1] / "spiders" / "pages" / "blocked_cloudflare_challenge.html").read_bytes()
PAGE = f"/review/{DOMAIN}"


def history_reviews() -> list:
    return [site_review(n, 1 + n % 5, 100 + 24 * n) for n in range(25)]


def source_row(e2e) -> Source:
    with create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}").connect() as db:
        return db.execute(select(Source)).one()


def problem_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]


def test_a_bot_challenge_turns_the_source_blocked_and_names_the_vendor(e2e):
    e2e.publish(history_reviews())
    assert e2e.crawl().code == 0
    e2e.site.set_status(PAGE, 503, headers={"Server": "cloudflare", "cf-mitigated": "challenge"}, body=CHALLENGE)
    result = e2e.crawl()
    assert result.code == 1
    [line] = problem_lines(result)
    assert "acme-trustpilot blocked: cloudflare answered instead of the page at" in line and "HTTP 503" in line and "sha256" in line
    source = source_row(e2e)
    assert source.state == "blocked" and source.consecutive_failures == 1
    assert "blocked" in e2e.repwatch("sources", "health").stdout


def test_a_page_that_stops_showing_reviews_turns_the_source_broken_with_evidence(e2e):
    e2e.publish(history_reviews())
    assert e2e.crawl().code == 0
    e2e.site.set_page(PAGE, b"<html><body><main class='reviews-v2'><p>Loading reviews...</p></main></body></html>")
    result = e2e.crawl()
    assert result.code == 1
    [line] = problem_lines(result)
    assert "acme-trustpilot broken" in line and "layout changed" in line and f"{PAGE} (HTTP 200" in line
    assert source_row(e2e).state == "broken"
    with create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}").connect() as db:
        assert len(db.execute(select(Review.id)).all()) == 25  # nothing stored is lost


def test_a_full_crawl_records_reviews_taken_down_and_history_shows_them(e2e):
    reviews = history_reviews()
    e2e.publish(reviews)
    assert e2e.crawl().code == 0
    taken_down = reviews.pop(3)
    e2e.publish(reviews)
    # An ordinary crawl stops at the first page of known reviews: it cannot tell what is missing.
    assert e2e.crawl().code == 0
    full = e2e.crawl("--full")
    assert full.code == 0, full.stderr
    with create_engine(f"sqlite:///{e2e.tmp / 'data' / 'repwatch.db'}").connect() as db:
        removed = db.execute(select(Review.id, Review.external_id).where(Review.removed_at.is_not(None))).all()
    assert [external_id for _, external_id in removed] == [taken_down.id]
    shown = e2e.repwatch("history", str(removed[0][0]), "--format", "json")
    changes = [json.loads(line)["change"] for line in shown.stdout.splitlines()]
    assert changes == ["first", "removed"]
    # Seen again later: it is back, and the history says so.
    e2e.publish(history_reviews())
    assert e2e.crawl("--full").code == 0
    again = e2e.repwatch("history", str(removed[0][0]), "--format", "json")
    assert [json.loads(line)["change"] for line in again.stdout.splitlines()] == ["first", "removed", "reappeared"]


@pytest.mark.parametrize(
    ("page", "status", "headers", "vendor"),
    [
        ("blocked_akamai.html", 403, {"Server": "AkamaiGHost"}, "akamai"),
        ("blocked_sucuri.html", 403, {"Server": "Sucuri/Cloudproxy", "X-Sucuri-ID": "14013"}, "sucuri"),
        ("blocked_datadome.html", 403, {"X-DataDome": "protected"}, "datadome"),
        ("blocked_imperva.html", 200, {}, "imperva"),
    ],
)
def test_every_named_wall_turns_the_source_blocked_not_broken(e2e, page, status, headers, vendor):
    """Akamai, Sucuri, DataDome and Imperva walls, on a source that had reviews: `blocked: VENDOR` with evidence."""
    e2e.publish(history_reviews())
    assert e2e.crawl().code == 0
    wall = (Path(__file__).resolve().parents[1] / "spiders" / "pages" / page).read_bytes()
    e2e.site.set_status(PAGE, status, headers=headers, body=wall)
    result = e2e.crawl()
    assert result.code == 1
    [line] = problem_lines(result)
    assert f"acme-trustpilot blocked: {vendor} answered instead of the page at" in line and f"HTTP {status}" in line and "sha256" in line
    assert source_row(e2e).state == "blocked"
