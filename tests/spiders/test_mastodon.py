"""MastodonSpider on our hashtag timeline: boosts, content warnings, Link-header paging, its options."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from scrapy.http import TextResponse

from spiders.sites.mastodon import MastodonSpider
from tests.spiders._pages import page_bytes

TAG = "https://mastodon.example/api/v1/timelines/tag/AcmeCoffee?limit=40"


def test_hashtag_timeline_with_a_boost_and_the_link_header():
    spider = MastodonSpider(url="https://mastodon.example", options={"hashtag": "#AcmeCoffee"})
    assert spider.start_url() == TAG
    link = '<https://mastodon.example/api/v1/timelines/tag/AcmeCoffee?limit=40&max_id=99>; rel="next", ' \
           '<https://mastodon.example/api/v1/timelines/tag/AcmeCoffee?min_id=113>; rel="prev"'
    response = TextResponse(url=TAG, body=page_bytes("mastodon_tag.json"), encoding="utf-8", headers={"Link": link})
    posts = list(spider.parse_reviews(response))
    assert [(p.external_id, p.author, p.votes, p.published_at) for p in posts] == [
        ("https://mastodon.example/users/ana/statuses/113600000000000002", "Ana (@ana)", 3,
         datetime(2024, 12, 5, 12, 0, tzinfo=UTC)),
        ("https://other.example/users/cy/statuses/99", "Cy (@cy@other.example)", 11, datetime(2024, 12, 3, 20, 0, tzinfo=UTC)),
    ]
    assert posts[0].body == "Waited 40 minutes at #AcmeCoffee and got the wrong drink."
    assert posts[1].body == "food\n\nBest croissant in town at #AcmeCoffee"  # the content warning first
    assert posts[1].url == "https://other.example/@cy/99"
    assert spider.next_page(response) == "https://mastodon.example/api/v1/timelines/tag/AcmeCoffee?limit=40&max_id=99"


def test_account_and_search_requests():
    spider = MastodonSpider(url="https://mastodon.example/", options={"account": "@acme@mastodon.example"})
    assert spider.start_url() == "https://mastodon.example/api/v1/accounts/lookup?acct=acme%40mastodon.example"
    search = MastodonSpider(url="https://mastodon.example", options={"query": "Acme Coffee"})
    url = search.start_url()
    assert url == "https://mastodon.example/api/v2/search?q=Acme+Coffee&type=statuses&limit=40"
    body = b'{"accounts": [], "statuses": ' + page_bytes("mastodon_tag.json") + b', "hashtags": []}'
    response = TextResponse(url=url, body=body, encoding="utf-8")
    assert len(list(search.parse_reviews(response))) == 2
    assert search.next_page(response) == url + "&offset=2"


def test_exactly_one_timeline():
    with pytest.raises(ValidationError, match="exactly one"):
        MastodonSpider.Options.model_validate({"hashtag": "acme", "query": "acme"})
    with pytest.raises(ValidationError, match="exactly one"):
        MastodonSpider.Options.model_validate({})
