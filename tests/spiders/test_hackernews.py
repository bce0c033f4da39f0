"""HackernewsSpider on our Algolia HN search answer."""
from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import TextResponse

from spiders.sites.hackernews import HackernewsSpider
from tests.spiders._pages import page_bytes

SEARCH = "https://hn.algolia.com/api/v1/search_by_date?query=Acme+Coffee&tags=%28story%2Ccomment%29&hitsPerPage=50&page=0"


def test_comments_and_stories_with_points_and_permalinks():
    spider = HackernewsSpider(url="https://hn.algolia.com", options={"query": "Acme Coffee"})
    assert spider.start_url() == SEARCH
    response = TextResponse(url=SEARCH, body=page_bytes("hackernews_search.json"), encoding="utf-8")
    items = list(spider.parse_reviews(response))
    assert [(i.external_id, i.title, i.votes, i.author, i.published_at) for i in items] == [
        ("42300002", None, None, "pg_fan", datetime(2024, 12, 5, 14, 1, 2, tzinfo=UTC)),
        ("42300000", "Ask HN: Coffee subscriptions?", 31, "founder", datetime(2024, 12, 5, 12, 0, tzinfo=UTC)),
        ("42299999", "Acme Coffee raises prices by 20%", 5, "linker", datetime(2024, 12, 4, 10, 0, tzinfo=UTC)),
    ]
    assert items[0].body == "I used Acme Coffee's API at work; their support never answered.\n\nSwitched after a month."
    assert items[0].url == "https://news.ycombinator.com/item?id=42300002"
    assert items[1].body == "Is Acme Coffee worth it?"
    assert items[2].body == "Acme Coffee raises prices by 20%"  # a link story: its title is its text
    assert spider.next_page(response) == SEARCH.replace("page=0", "page=1")
    last = TextResponse(url=SEARCH, body=b'{"hits": [], "page": 1, "nbPages": 2}', encoding="utf-8")
    assert spider.next_page(last) is None
