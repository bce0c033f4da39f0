"""`render: true` end to end: reviews that only JavaScript builds are stored through headless Chromium, and only then."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from demo.jspage import js_review_pages
from demo.server import SiteServer
from models.tables import CrawlRun, Review
from tests.cli import Result, run_cli
from tests.e2e.conftest import site_review

CHROMIUM = Path("/usr/bin/chromium")
# 12 reviews, 10 per page: page 2 is reached by a link the script writes, so paging is rendered too.
REVIEWS = [site_review(n, 1 + n % 5, 2 + 24 * n, body=f"Visit {n}: coffee & cake, \"fine\" — 5 < 6.") for n in range(12)]
# The itemid the page's script gives each review (its permalink).
EXPECTED_IDS = {f"/reviews/{r.id}" for r in REVIEWS}

needs_playwright = pytest.mark.usefixtures("scrapy_playwright")
needs_chromium = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
def scrapy_playwright():
    return pytest.importorskip("scrapy_playwright", reason="scrapy-playwright is not installed (pip install 'repwatch[render]')")


@pytest.fixture
def site():
    with SiteServer(js_review_pages("Harbour Café", REVIEWS), robots_txt="User-agent: *\nDisallow: /private/\n") as server:
        yield server


def crawl(tmp: Path, url: str, *, render: bool, browser_path: Path = CHROMIUM) -> Result:
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
          browser_path: {browser_path}
        businesses:
          - name: Harbour Café
            sources:
              - name: harbour-js
                kind: schema_org
                url: {url}
                render: {'true' if render else 'false'}
    """))
    return run_cli("crawl", "--no-alerts", "--config", str(config), cwd=tmp)


def stored(tmp: Path) -> tuple[list, object]:
    """The stored reviews and the last CrawlRun."""
    engine = create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}")
    with engine.connect() as db:
        reviews = list(db.execute(select(Review)).all())
        run = db.execute(select(CrawlRun).order_by(CrawlRun.id.desc())).first()
    engine.dispose()
    return reviews, run


@needs_chromium
@needs_playwright
def test_render_stores_exactly_the_reviews_the_script_builds(site, tmp_path):
    started = time.monotonic()
    result = crawl(tmp_path, site.url_for("/reviews"), render=True)
    elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    reviews, run = stored(tmp_path)
    assert sorted(r.external_id for r in reviews) == sorted(site.url + path for path in EXPECTED_IDS)
    by_id = {r.external_id.rsplit("/", 1)[1]: r for r in reviews}
    for expected in REVIEWS:
        got = by_id[expected.id]
        assert (got.author, got.rating, got.body) == (expected.author, expected.rating, expected.body)
    assert (run.outcome, run.pages, run.items) == ("ok", 2, 12)
    # The browser ran each page's script: both data files were fetched, by Chromium (not by Scrapy).
    assert [r.path for r in site.requests if r.path.startswith("/api/")] == ["/api/reviews/1.json", "/api/reviews/2.json"]
    # Robots.txt is still read by Scrapy before the first page; every request carries our User-Agent; images
    # (the logo) are never fetched.
    assert site.requests[0].path == "/robots.txt"
    assert {r.headers.get("user-agent", "").split("/")[0] for r in site.requests} == {"repwatch"}
    assert "/img/logo.png" not in {r.path for r in site.requests}
    print(f"render crawl of 2 pages: {elapsed:.1f} s")


def test_without_render_the_same_source_finds_nothing_and_says_so(site, tmp_path):
    result = crawl(tmp_path, site.url_for("/reviews"), render=False)
    assert result.code == 1  # a source that reads nothing is not ok (issue 16): `empty`, with what to try
    assert "render: true" in result.stderr
    reviews, run = stored(tmp_path)
    assert reviews == [] and (run.outcome, run.pages, run.items) == ("empty", 1, 0)
    assert not any(r.path.startswith("/api/") for r in site.requests)  # nothing ran the script


@needs_playwright
def test_a_missing_browser_fails_the_source_with_one_clear_line(site, tmp_path):
    missing = tmp_path / "no-such" / "chromium"
    result = crawl(tmp_path, site.url_for("/reviews"), render=True, browser_path=missing)
    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert lines == [f"repwatch: source harbour-js failed: render: no Chromium at {missing} (apt-get install chromium)"], result.stderr
    assert "Traceback" not in result.stderr
    reviews, run = stored(tmp_path)
    assert reviews == [] and run.outcome == "failed"
    assert site.requests == []  # nothing was fetched without the browser


@needs_playwright
def test_a_browser_that_does_not_start_fails_the_source_with_one_line(site, tmp_path):
    not_chromium = Path("/bin/true")  # exists and runs, but never speaks the DevTools protocol
    result = crawl(tmp_path, site.url_for("/reviews"), render=True, browser_path=not_chromium)
    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert len(lines) == 1 and f"render: Chromium at {not_chromium} did not start" in lines[0], result.stderr
    assert "Call log" not in result.stderr and "Traceback" not in result.stderr


def test_sources_that_do_not_render_never_import_playwright():
    code = (
        "import sys, spiders.runner; from spiders.generic.schema_org import SchemaOrgSpider; "
        "assert SchemaOrgSpider(url='http://127.0.0.1/').page_meta(1) == {'page': 1}; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('playwright', 'scrapy_playwright')); "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
