"""`repwatch crawl` is polite on the wire: robots.txt before any page, Crawl-delay, Retry-After, revalidation."""
from __future__ import annotations

import textwrap
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from demo.server import SiteServer
from demo.sitegen import trustpilot_pages
from models.tables import CrawlRun, Review, Source
from tests.e2e.conftest import NOW, Setup, site_review

PAGES = Path(__file__).resolve().parents[1] / "spiders" / "pages"
CHALLENGE = (PAGES / "blocked_cloudflare_challenge.html").read_bytes()


def write_config(tmp: Path, site_url: str, sources: dict[str, str], extra: str = "") -> Path:
    """A config whose business has one trustpilot source per (name, domain); `extra` is added to each source."""
    entries = "".join(
        f"\n      - name: {name}\n        kind: trustpilot\n        url: {site_url}/review/{domain}{extra}"
        for name, domain in sources.items()
    )
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
        businesses:
          - name: Acme Coffee
            sources:""") + entries + "\n")
    return config


def publish(site: SiteServer, domain: str, n: int = 3, **page_options) -> None:
    reviews = [site_review(i, 1 + i % 5, 100 + i) for i in range(n)]
    for path, body in trustpilot_pages(domain, reviews).items():
        site.set_page(path, body, **page_options)


def problems(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]


def runs(tmp: Path) -> dict[str, CrawlRun]:
    """Each source's (only) CrawlRun, by source name."""
    with Session(create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}"), expire_on_commit=False) as db:
        rows = db.execute(select(Source.name, CrawlRun).join(CrawlRun, CrawlRun.source_id == Source.id)).all()
    return dict(rows)


def stored_reviews(tmp: Path) -> int:
    with create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}").connect() as db:
        return len(db.execute(select(Review.id)).all())


def test_a_burst_of_sources_on_one_host_waits_for_robots_and_keeps_its_crawl_delay(tmp_path):
    """Four sources on one host start at once: two are disallowed for our UA token, and Crawl-delay: 1 holds.

    Measured on stock Scrapy 2.19: all requests went out within ~15 ms, and only the first request to wait for
    robots.txt was checked (the others were let through as if there were no robots.txt).
    """
    robots = (
        "User-agent: repwatch\nDisallow: /review/x.example\nDisallow: /review/y.example\nCrawl-delay: 1\n\n"
        "User-agent: *\nDisallow: /\n"  # if our token did not match, every source would be forbidden
    )
    with SiteServer(robots_txt=robots) as site:
        for domain in ("a.example", "x.example", "b.example", "y.example"):
            publish(site, domain)
        sources = {"src-a": "a.example", "src-x": "x.example", "src-b": "b.example", "src-y": "y.example"}
        setup = Setup(site, None, write_config(tmp_path, site.url, sources), tmp_path)
        result = setup.crawl()
        log = site.requests

    assert result.code == 1  # the two forbidden sources fail, each with the reason
    assert sorted(problems(result)) == [
        f"repwatch: source src-x failed: Forbidden by robots.txt at {site.url}/review/x.example",
        f"repwatch: source src-y failed: Forbidden by robots.txt at {site.url}/review/y.example",
    ], result.stderr
    paths = [r.path for r in log]
    assert paths[0] == "/robots.txt" and paths.count("/robots.txt") == 1  # one fetch for the four crawlers
    assert sorted(paths[1:]) == ["/review/a.example", "/review/b.example"]  # nothing disallowed was requested
    assert all(r.headers["user-agent"].startswith("repwatch/") for r in log)
    gaps = [later.at - earlier.at for earlier, later in pairwise(log)]
    assert min(gaps) >= 0.9, gaps  # Crawl-delay: 1, across the four crawlers, robots.txt included
    found = runs(tmp_path)
    assert found["src-a"].outcome == found["src-b"].outcome == "ok"
    assert found["src-x"].stats["robotstxt/forbidden"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_out_and_the_page_then_crawled(tmp_path, status):
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "a.example")
        site.set_status("/review/a.example", status, {"Retry-After": "1"}, body=b"slow down", times=1)
        setup = Setup(site, None, write_config(tmp_path, site.url, {"src-a": "a.example"}), tmp_path)
        result = setup.crawl()
        log = [r for r in site.requests if r.path == "/review/a.example"]

    assert result.code == 0, result.stderr
    assert [r.status for r in log] == [status, 200]
    waited = log[1].at - log[0].at
    assert waited >= 0.95, waited  # stock Scrapy retried after ~20 ms
    run = runs(tmp_path)["src-a"]
    assert run.outcome == "ok" and run.items == 3
    assert run.stats["retry_after/count"] == 1


@pytest.mark.parametrize(("status", "times"), [(429, 2), (503, 1)])
def test_without_retry_after_the_retries_back_off_exponentially(tmp_path, status, times):
    """Stock Scrapy retried a bare 429 at once (~20 ms later): a rate limiter answers that with a ban."""
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "a.example")
        site.set_status("/review/a.example", status, body=b"slow down", times=times)
        setup = Setup(site, None, write_config(tmp_path, site.url, {"src-a": "a.example"}), tmp_path)
        result = setup.crawl()
        log = [r for r in site.requests if r.path == "/review/a.example"]

    assert result.code == 0, result.stderr
    assert [r.status for r in log] == [status] * times + [200]
    gaps = [later.at - earlier.at for earlier, later in pairwise(log)]
    assert [round(gap) for gap in gaps] == [1, 2][:times], gaps  # 1 s, then 2 s
    assert all(gap >= floor - 0.05 for gap, floor in zip(gaps, (1, 2), strict=False)), gaps
    run = runs(tmp_path)["src-a"]
    assert run.outcome == "ok" and run.items == 3
    assert run.stats["retry_backoff/count"] == times and run.stats["retry_backoff/max_seconds"] == times


def test_download_delay_and_concurrency_are_each_sources_own(tmp_path):
    """A slow source (its own download_delay) paces only itself: a source on the same host goes at its own pace."""
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "slow.example", n=50)  # 3 pages each
        publish(site, "fast.example", n=50)
        config = write_config(tmp_path, site.url, {"src-slow": "slow.example"}, extra="\n        download_delay: 0.8")
        config.write_text(
            config.read_text() + f"      - name: src-fast\n        kind: trustpilot\n"
            f"        url: {site.url}/review/fast.example\n        concurrency: 2\n"
        )
        setup = Setup(site, None, config, tmp_path)
        result = setup.crawl()
        slow = [r.at for r in site.requests if r.path.startswith("/review/slow.example")]
        fast = [r.at for r in site.requests if r.path.startswith("/review/fast.example")]

    assert result.code == 0, result.stderr
    assert len(slow) == len(fast) == 3
    assert min(b - a for a, b in pairwise(slow)) >= 0.75  # its own delay, between each of its pages
    assert fast[-1] - fast[0] < 0.75  # not held by the slow source's delay on the same host
    assert fast[-1] < slow[-1]


def test_a_retry_after_beyond_the_cap_fails_the_source_at_once_with_the_reason(tmp_path):
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "a.example")
        site.set_status("/review/a.example", 429, {"Retry-After": "3600"}, body=b"come back later")
        setup = Setup(site, None, write_config(tmp_path, site.url, {"src-a": "a.example"}), tmp_path)
        result = setup.crawl()
        asked = site.count("/review/a.example")

    assert result.code == 1
    [line] = problems(result)
    assert "src-a failed" in line and "Retry-After" in line and "3600 s" in line and "600 s" in line, line
    assert asked == 1  # not retried: waiting an hour would hold every source of the crawl


def test_a_challenge_with_retry_after_still_reaches_the_block_check_after_the_retries(tmp_path):
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "a.example")
        challenge = {"Server": "cloudflare", "cf-mitigated": "challenge", "Retry-After": "1"}
        site.set_status("/review/a.example", 503, challenge, body=CHALLENGE)
        setup = Setup(site, None, write_config(tmp_path, site.url, {"src-a": "a.example"}), tmp_path)
        result = setup.crawl()
        log = [r for r in site.requests if r.path == "/review/a.example"]

    [line] = problems(result)
    assert "src-a blocked: cloudflare answered instead of the page" in line and "next crawl" in line, line
    assert "blocked: blocked" not in line
    assert len(log) == 3  # the first try and RETRY_TIMES = 2 retries, each after the asked second
    assert min(b.at - a.at for a, b in pairwise(log)) >= 0.95


def test_a_changed_page_behind_an_old_last_modified_is_seen_on_the_next_crawl(tmp_path):
    """RFC 2616 caching would call it fresh for days (DESIGN §7); spiders/cache.py revalidates every crawl."""
    old = NOW - timedelta(days=30)
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        publish(site, "a.example", n=3, last_modified=old)
        setup = Setup(site, None, write_config(tmp_path, site.url, {"src-a": "a.example"}), tmp_path)
        assert setup.crawl().code == 0
        assert stored_reviews(tmp_path) == 3
        publish(site, "a.example", n=4, last_modified=old)  # a new review; the site still says "modified 30 days ago"
        site.reset_log()
        second = setup.crawl()
        page_answers = [r.status for r in site.requests if r.path == "/review/a.example"]

    assert second.code == 0, second.stderr
    assert page_answers == [200]
    assert stored_reviews(tmp_path) == 4


def test_obey_robots_false_on_one_source_applies_to_it_alone_and_is_logged(tmp_path):
    robots = "User-agent: *\nDisallow: /review/x.example\n"
    with SiteServer(robots_txt=robots) as site:
        publish(site, "x.example")
        publish(site, "y.example")
        config = write_config(tmp_path, site.url, {"src-x": "x.example"}, extra="\n        obey_robots: false")
        config.write_text(
            config.read_text() + "      - name: src-y\n        kind: trustpilot\n"
            f"        url: {site.url}/review/x.example?again=1\n"
        )
        setup = Setup(site, None, config, tmp_path)
        result = setup.crawl()
        paths = [r.path for r in site.requests]

    assert "/review/x.example" in paths  # src-x: the operator said so
    assert "/review/x.example?again=1" not in paths  # src-y: still obeys robots.txt
    forbidden = f"{site.url}/review/x.example?again=1"
    assert problems(result) == [f"repwatch: source src-y failed: Forbidden by robots.txt at {forbidden}"]
    crawl_log = (tmp_path / "data" / "logs" / "crawl.log").read_text()
    warnings = [line for line in crawl_log.splitlines() if "robots.txt is NOT obeyed" in line]
    assert len(warnings) == 1 and "src-x" in warnings[0] and " WARNING spiders.runner: " in warnings[0]
