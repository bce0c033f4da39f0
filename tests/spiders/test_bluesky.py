"""BlueskySpider on our searchPosts answer."""
from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import TextResponse

from spiders.sites.bluesky import BlueskySpider
from tests.spiders._pages import page_bytes

SEARCH = "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts?q=Acme+Coffee&sort=latest&limit=100"


def test_posts_with_permalinks_likes_and_the_cursor():
    spider = BlueskySpider(url="https://public.api.bsky.app", options={"query": "Acme Coffee"})
    assert spider.start_url() == SEARCH
    response = TextResponse(url=SEARCH, body=page_bytes("bluesky_search.json"), encoding="utf-8")
    posts = list(spider.parse_reviews(response))
    assert [(p.external_id, p.author, p.votes, p.published_at, p.rating, p.language) for p in posts] == [
        ("at://did:plc:abc123/app.bsky.feed.post/3lbqtest1", "Jo (@jo.bsky.social)", 7,
         datetime(2024, 12, 5, 9, 30, 12, 345000, tzinfo=UTC), None, None),  # the scorer detects the language
        ("at://did:plc:def456/app.bsky.feed.post/3lbqtest2", "@kaffee.example.com", 2,
         datetime(2024, 12, 4, 18, 0, tzinfo=UTC), None, None),
    ]
    assert posts[0].url == "https://bsky.app/profile/jo.bsky.social/post/3lbqtest1"
    assert posts[0].body == "Acme Coffee lost my order again. Third time this month."
    assert spider.next_page(response) == SEARCH + "&cursor=2"
    empty = TextResponse(url=SEARCH, body=b'{"posts": [], "cursor": "3"}', encoding="utf-8")
    assert spider.next_page(empty) is None
