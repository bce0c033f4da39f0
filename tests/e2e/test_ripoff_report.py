"""ripoff_report end to end: `repwatch crawl` of a search listing reads each report page once, the business's
rebuttal stored as the reply, and a later crawl revalidates them for the price of a 304 each."""
from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from demo.server import SiteServer
from models.tables import Review
from tests.cli import run_cli

PAGES = Path(__file__).resolve().parents[1] / "spiders" / "pages"
LISTING = "/reports/specific_search/acme%20coffee"
FIRST = "/reports/acme-coffee/portland-oregon/acme-coffee-charged-twice-no-refund-1498765"
SECOND = "/reports/acme-coffee/portland-oregon/acme-coffee-rude-staff-1490001"


def test_a_listing_of_reports_is_crawled_report_by_report(tmp_path):
    report = (PAGES / "ripoff_report.html").read_bytes()
    second = (report.replace(b"#1498765", b"#1490001").replace(b"Owner of company", b"Consumer Comment")
              .replace(b"charged twice", b"served by rude staff"))
    listing = (PAGES / "ripoff_report_listing.html").read_bytes()
    with SiteServer(robots_txt="User-agent: *\nDisallow: /private/\n") as site:
        site.set_page(LISTING, listing)
        site.set_page("/reports/specific_search/acme%20coffee?pg=2", listing.replace(b"report_link", b"x"))
        site.set_page(FIRST, report)
        site.set_page(SECOND, second)
        config = tmp_path / "config.yaml"
        config.write_text(textwrap.dedent(f"""
            data_dir: {tmp_path / 'data'}
            crawl: {{polite: false, download_delay: 0}}
            businesses:
              - name: Acme Coffee
                sources:
                  - name: acme-ripoff
                    kind: ripoff_report
                    url: {site.url}{LISTING}
        """))
        first = run_cli("crawl", "--config", str(config), "--no-alerts", cwd=tmp_path)
        site.reset_log()
        again = run_cli("crawl", "--config", str(config), "--no-alerts", cwd=tmp_path)
        asked_again = sorted((r.path, r.status) for r in site.requests if r.path != "/robots.txt")

    assert first.code == 0, first.stderr
    with Session(create_engine(f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}")) as db:
        stored = {r.external_id: r for r in db.scalars(select(Review))}
        assert sorted(stored) == ["1490001", "1498765"]
        assert stored["1498765"].reply_body.startswith("Maren, the second charge was refunded")
        assert stored["1490001"].reply_body is None and stored["1490001"].rating is None
        assert stored["1498765"].url.endswith(FIRST)
    assert again.code == 0, again.stderr
    # Each report revalidated (a rebuttal may have come since), unchanged ones for a 304; no second listing page.
    assert asked_again == sorted([(LISTING, 304), (FIRST, 304), (SECOND, 304)])
