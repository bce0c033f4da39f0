"""SiteServer: serving, conditional GET, fault injection and the request log, over real HTTP on 127.0.0.1."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import httpx
import pytest

from demo.server import SiteServer

PAGE = b"<html><body>hello</body></html>"


@pytest.fixture
def site():
    with SiteServer({"/a": PAGE, "/feed.json": b"{}", "/list?page=2": b"two"}, robots_txt="User-agent: *\nAllow: /\n") as server:
        yield server


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as http:
        yield http


def test_serves_pages_with_content_type_and_validators(site, client):
    response = client.get(site.url_for("/a"))
    assert response.status_code == 200
    assert response.content == PAGE
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["etag"].startswith('"') and response.headers["etag"] == site.etag("/a")
    assert response.headers["last-modified"].endswith("GMT")
    assert "cache-control" not in response.headers
    assert client.get(site.url_for("/feed.json")).headers["content-type"] == "application/json"
    assert client.get(site.url_for("/robots.txt")).text == "User-agent: *\nAllow: /\n"
    assert client.get(site.url_for("/list?page=2")).content == b"two"
    assert client.get(site.url_for("/list?page=3")).status_code == 404
    assert client.head(site.url_for("/a")).headers["content-length"] == str(len(PAGE))
    assert site.url.startswith("http://127.0.0.1:") and not site.url.endswith(":0")


def test_if_none_match_gets_304_until_the_page_changes(site, client):
    etag = client.get(site.url_for("/a")).headers["etag"]
    not_modified = client.get(site.url_for("/a"), headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert client.get(site.url_for("/a"), headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304

    site.set_page("/a", b"changed")
    changed = client.get(site.url_for("/a"), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.content == b"changed"
    assert changed.headers["etag"] != etag


def test_if_modified_since_gets_304_only_without_if_none_match(site, client):
    site.set_page("/old", b"old page", last_modified=datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc))
    first = client.get(site.url_for("/old"))
    assert first.headers["last-modified"] == "Fri, 01 Mar 2024 08:00:00 GMT"
    assert client.get(site.url_for("/old"), headers={"If-Modified-Since": first.headers["last-modified"]}).status_code == 304
    assert client.get(site.url_for("/old"), headers={"If-Modified-Since": "Sat, 02 Mar 2024 00:00:00 GMT"}).status_code == 304
    assert client.get(site.url_for("/old"), headers={"If-Modified-Since": "Thu, 29 Feb 2024 00:00:00 GMT"}).status_code == 200
    assert client.get(site.url_for("/old"), headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2)
    both = {"If-Modified-Since": first.headers["last-modified"], "If-None-Match": '"stale"'}
    assert client.get(site.url_for("/old"), headers=both).status_code == 200


def test_unchanged_body_keeps_last_modified_and_cache_control_is_sent(client):
    with SiteServer({"/p": b"x"}, cache_control="max-age=0") as site:
        before = client.get(site.url_for("/p"))
        site.set_page("/p", b"x")
        after = client.get(site.url_for("/p"))
        assert before.headers["last-modified"] == after.headers["last-modified"]
        assert after.headers["cache-control"] == "max-age=0"
        assert client.get(site.url_for("/p"), headers={"If-None-Match": after.headers["etag"]}).headers["cache-control"] == "max-age=0"


def test_set_status_times_then_back_to_normal(site, client):
    site.set_status("/a", 503, {"Retry-After": "7"}, body=b"busy", times=2)
    answers = [client.get(site.url_for("/a")) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["retry-after"] == "7" and answers[0].content == b"busy"
    assert answers[2].content == PAGE


def test_set_status_forever_and_wildcard_and_clear(site, client):
    site.set_status("/a", 403, body="<title>Just a moment...</title>")
    assert [client.get(site.url_for("/a")).status_code for _ in range(3)] == [403, 403, 403]
    assert client.get(site.url_for("/feed.json")).status_code == 200
    site.set_status("*", 429)
    assert client.get(site.url_for("/feed.json")).status_code == 429
    site.clear_faults()
    assert client.get(site.url_for("/a")).status_code == 200


def test_close_all_drops_connections(site, client):
    site.close_all(times=1)
    with pytest.raises(httpx.TransportError):
        client.get(site.url_for("/a"))
    assert client.get(site.url_for("/a")).status_code == 200
    assert [r.status for r in site.requests] == [0, 200]


def test_request_log_counts_and_resets(site, client):
    etag = client.get(site.url_for("/a")).headers["etag"]
    client.get(site.url_for("/a"), headers={"If-None-Match": etag})
    client.get(site.url_for("/list?page=2"))
    client.get(site.url_for("/missing"))
    assert site.count() == 4
    assert site.count("/a") == 2
    assert site.count("/list?page=2") == 1
    method, path, headers, status = site.requests[1]
    assert (method, path, status) == ("GET", "/a", 304)
    assert headers["if-none-match"] == etag
    assert [r.status for r in site.requests] == [200, 304, 200, 404]
    site.reset_log()
    assert site.count() == 0 and site.requests == []


def test_log_is_thread_safe_and_pages_change_at_run_time(site):
    def fetch_many():
        with httpx.Client(timeout=5) as http:
            for _ in range(25):
                assert http.get(site.url_for("/a")).status_code == 200

    threads = [threading.Thread(target=fetch_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert site.count("/a") == 100

    site.remove_page("/a")
    with httpx.Client(timeout=5) as http:
        assert http.get(site.url_for("/a")).status_code == 404
        site.set_page("/b", "<p>new</p>")
        assert http.get(site.url_for("/b")).text == "<p>new</p>"
