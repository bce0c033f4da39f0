"""RipoffReportSpider on our own pages in the structure docs/sources.md documents (no real page verified it yet)."""
from __future__ import annotations

from datetime import UTC, datetime

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.ripoff_report import RipoffReportSpider
from tests.spiders._pages import html_response, page_bytes

REPORT_URL = ("https://www.ripoffreport.com/reports/acme-coffee/portland-oregon/"
              "acme-coffee-charged-twice-no-refund-1498765")


def test_a_report_with_the_business_rebuttal_as_its_reply():
    spider = RipoffReportSpider(url=REPORT_URL)
    [report] = spider.parse_reviews(html_response("ripoff_report.html", REPORT_URL))
    assert (report.external_id, report.rating, report.language) == ("1498765", None, "en")  # no stars: text scored
    assert report.title == "Acme Coffee Charged twice, no refund Portland, Oregon"
    assert report.author == "Maren (Portland, Oregon)"
    assert report.published_at == datetime(2024, 3, 12, tzinfo=UTC)
    assert report.body == ("I paid for a bag of beans online and my card was charged twice.\n\n"
                           "Three emails & two calls later, still no refund.\nAvoid.")
    # Not the author's own follow-up nor a consumer's comment: the business's rebuttal.
    assert report.reply is not None
    assert report.reply.body == "Maren, the second charge was refunded on March 14.\n\nWe are sorry for the wait."
    assert report.reply.published_at == datetime(2024, 3, 14, tzinfo=UTC)
    assert report.url == REPORT_URL and not spider.problems


def test_without_a_business_rebuttal_there_is_no_reply_and_labels_are_found_without_classes():
    body = (page_bytes("ripoff_report.html").replace(b"Owner of company", b"Consumer Comment")
            .replace(b'<li class="author">', b"<li>").replace(b'<li class="submitted">', b"<li>"))
    [report] = extract_reviews(body, REPORT_URL)
    assert report.reply is None
    assert report.author == "Maren (Portland, Oregon)" and report.published_at == datetime(2024, 3, 12, tzinfo=UTC)


def test_the_number_comes_from_the_page_when_the_url_has_none():
    [report] = extract_reviews(page_bytes("ripoff_report.html"), "https://www.ripoffreport.com/r/x", spider="ripoff_report")
    assert report.external_id == "1498765"


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(REPORT_URL, b"<html></html>") == "ripoff_report"
    assert choose_spider("", page_bytes("ripoff_report.html")) == "ripoff_report"
    assert choose_spider("", page_bytes("consumeraffairs.html")) != "ripoff_report"
