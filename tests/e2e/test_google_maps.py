"""The google_maps kind end to end: `repwatch crawl` against a local listugcposts stand-in, two pages by token."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from tests.cli import run_cli
from tests.e2e.api_server import Answer, ApiRequest, ApiServer
from tests.e2e.test_api_sources import crawl, page, stored

PB = ("!1m6!1s0x0%3A0xa1b2c3d4e5f60718!6m4!4m1!1e1!4m1!1e3!2m2!1i10!2s!5m2!1sAbCdEf!7e81!8m5!1b1!2b1!3b1!5b1!7b1"
      "!11m0!13m1!1e2")
TOKEN = "CAESY0NBRVFRUEFHRTJfVE9LRU4="  # d[1] of our first answer


def _listugcposts(request: ApiRequest) -> Answer:
    parts = urlsplit(request.path)
    if parts.path != "/maps/rpc/listugcposts":
        return 404, {}, b""
    pb = parse_qs(parts.query)["pb"][0]
    name = "google_maps_page2.txt" if f"!2m2!1i10!2s{TOKEN}!" in pb else "google_maps.txt"
    return 200, {"Content-Type": "application/json; charset=UTF-8"}, page(name)


def test_a_place_reviews_are_read_page_after_page_with_the_owner_reply(tmp_path):
    with ApiServer(_listugcposts) as api:
        result = crawl(tmp_path, "google_maps", f"{api.url}/maps/rpc/listugcposts?authuser=0&hl=en&pb={PB}", {})
        asked = [parse_qs(urlsplit(r.path).query)["pb"][0] for r in api.requests if "/listugcposts" in r.path]
        assert "/robots.txt" in [urlsplit(r.path).path for r in api.requests]  # a page of Google's: robots.txt asked
    assert result.code == 0, result.stderr
    ids, state, _ = stored(tmp_path)
    assert ids == [f"ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MD{n}QAQ" for n in "EIMQU"] and state == "ok"
    assert [pb.split("!2m2!1i10!2s")[1].split("!")[0] for pb in asked] == ["", TOKEN]  # the first page, then d[1]

    lines = run_cli("reviews", "--format", "json", "--config", str(tmp_path / "config.yaml")).stdout.splitlines()
    reviews = {review["author"]: review for review in map(json.loads, lines)}
    replied = reviews["Dana Ortiz"]
    assert replied["rating"] == 1 and replied["published_at"] == "2024-12-05T10:00:00+00:00"
    assert replied["reply"].startswith("Sorry Dana, that is not our standard.") and replied["status"] == "replied"
    assert replied["url"].startswith("https://www.google.com/maps/reviews/data=")
    assert reviews["Lukas Weber"]["lang"] == "de"


def test_google_refusing_the_copied_address_is_one_line_and_a_failing_source(tmp_path):
    with ApiServer(lambda request: (403, {"Content-Type": "text/plain"}, b"Forbidden")) as api:
        result = crawl(tmp_path, "google_maps", f"{api.url}/maps/rpc/listugcposts?pb={PB}", {})
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert result.code == 1 and len(lines) == 1, result.stderr
    assert "authentication failed (HTTP 403): Google refused the request: copy a fresh listugcposts address" in lines[0]
    assert stored(tmp_path)[1] == "failing"
