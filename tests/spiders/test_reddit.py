"""RedditSpider on our search listing and thread, on its options and requests, and on a real thread's .json."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from scrapy.http import TextResponse

from spiders.sites.reddit import RedditSpider
from tests.spiders._pages import fingerprint, page_bytes

SEARCH = "https://www.reddit.com/search.json?q=Acme+Coffee&sort=new&limit=100&raw_json=1"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def parse(body: bytes, url: str, **options: str):
    spider = RedditSpider(url="https://www.reddit.com", options={"username": "acme_watch", **options})
    response = TextResponse(url=url, body=body, encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_search_listing_posts_with_score_permalink_and_next_page():
    spider, posts, next_url = parse(page_bytes("reddit_search.json"), SEARCH, query="Acme Coffee")
    assert [(p.external_id, p.votes, p.published_at, p.rating) for p in posts] == [
        ("t3_abc001", 14, utc(2024, 12, 5, 12, 0), None), ("t3_abc002", 52, utc(2024, 12, 4, 8, 13, 20), None),
    ]
    assert posts[0].title == "Acme Coffee overcharged me"
    assert posts[0].body == "They charged my card twice & won't refund."
    assert posts[0].url == "https://www.reddit.com/r/coffee/comments/abc001/acme_coffee_overchar/"
    assert posts[1].body == "Acme Coffee new roast is great" and posts[1].author is None  # a link post; deleted user
    assert next_url == SEARCH + "&after=t3_abc002"


def test_thread_post_comments_and_nested_replies_but_not_stubs():
    spider, things, next_url = parse(page_bytes("reddit_thread.json"), "https://www.reddit.com/comments/abc001.json",
                                     thread="abc001")
    assert [(t.external_id, t.votes, t.author) for t in things] == [
        ("t3_abc001", 14, "beanfan"), ("t1_c001", 9, "user_c001"), ("t1_c003", 4, "user_c003"),
    ]
    assert things[2].url == "https://www.reddit.com/r/coffee/comments/abc001/acme_coffee_overcharged_me/c003/"
    assert next_url is None
    assert spider.problems == {"reddit/more_comments_not_fetched": 2, "reddit/empty_post": 1}  # 2 stubs, 1 deleted


def test_what_to_read_becomes_the_request():
    def url(**options: str) -> str:
        return RedditSpider(url="https://www.reddit.com/", options={"username": "u/acme_watch", **options}).start_url()

    assert url(query="Acme Coffee") == SEARCH
    assert url(query="acme", subreddit="r/coffee") == (
        "https://www.reddit.com/r/coffee/search.json?q=acme&sort=new&limit=100&raw_json=1&restrict_sr=1")
    assert url(subreddit="coffee") == "https://www.reddit.com/r/coffee/new.json?limit=100&raw_json=1"
    assert url(thread="https://www.reddit.com/r/coffee/comments/abc001/acme/").startswith(
        "https://www.reddit.com/comments/abc001.json?sort=new")
    spider = RedditSpider(url="https://www.reddit.com", options={"username": "acme_watch", "subreddit": "coffee"})
    assert spider.api_headers()["User-Agent"] == "python:repwatch:0.1.0 (by /u/acme_watch)"


@pytest.mark.parametrize("options, message", [
    ({"query": "a", "thread": "abc001"}, "give one of"),
    ({}, "give one of"),
    ({"subreddit": "coffee", "client_id_env": "REDDIT_ID"}, "give both"),
    ({"subreddit": "coffee", "client_id_env": "my secret!", "client_secret_env": "X"}, "not an environment variable"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValidationError, match=message):
        RedditSpider.Options.model_validate({"username": "acme_watch", **options})
    with pytest.raises(ValidationError, match="username"):
        RedditSpider.Options.model_validate({"subreddit": "coffee"})


@pytest.mark.fixtures
def test_real_thread(real_pages: Path):
    body = (real_pages / "reddit" / "graw__r-self-1cebxh__comments-json__2016.json").read_bytes()
    spider, things, next_url = parse(body, "https://www.reddit.com/comments/1cebxh.json", thread="1cebxh")

    post, comments = things[0], things[1:]
    assert (post.external_id, post.votes, post.published_at) == ("t3_1cebxh", 5730, utc(2013, 4, 15, 16, 44, 39))
    assert fingerprint(post.title) == "e3c40467229b" and fingerprint(post.body[:40]) == "b2a12f2decce"
    assert post.url.startswith("https://www.reddit.com/r/self/comments/1cebxh/")
    # 199 comments (nested to depth 10), 5 of them deleted; the 125 "load more" stubs are not comments
    assert len(comments) == 194 and all(c.external_id.startswith("t1_") for c in comments)
    assert spider.problems == {"reddit/more_comments_not_fetched": 1082, "reddit/empty_post": 5}
    assert (comments[0].external_id, comments[0].votes, comments[0].published_at) == (
        "t1_c9ftsjg", 1058, utc(2013, 4, 15, 20, 51, 28))
    assert fingerprint(comments[0].body[:40]) == "96719ba088cc"
    assert comments[0].url == "https://www.reddit.com/r/self/comments/1cebxh/_/c9ftsjg/"
    assert (comments[-1].external_id, comments[-1].published_at) == ("t1_c9gyfj8", utc(2013, 4, 17, 12, 52, 46))
    assert sum(t.votes for t in things) == 45599
    assert next_url is None
