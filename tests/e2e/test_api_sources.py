"""The API kinds end to end: `repwatch crawl` against a local server speaking each API (paging, rate limits, auth)."""
from __future__ import annotations

import base64
import json
import textwrap
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models.tables import Review, Source
from tests.cli import run_cli
from tests.e2e.api_server import Answer, ApiRequest, ApiServer

PAGES = Path(__file__).resolve().parents[1] / "spiders" / "pages"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def crawl(tmp: Path, kind: str, url: str, options: dict, env: dict[str, str] | None = None):
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
        businesses:
          - name: Acme Coffee
            sources:
              - name: acme-{kind}
                kind: {kind}
                url: {url}
                options: {json.dumps(options)}
    """))
    return run_cli("crawl", "--no-alerts", "--config", str(config), env=env or {}, cwd=tmp)


def stored(tmp: Path) -> tuple[list[str], str, str | None]:
    """External ids stored, the source's state and its last error."""
    with Session(create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}")) as db:
        ids = db.scalars(select(Review.external_id).order_by(Review.id)).all()
        source = db.scalars(select(Source)).one()
        return list(ids), source.state, source.last_error


def listing(ids: list[str], after: str | None) -> bytes:
    children = [{"kind": "t3", "data": {"id": i, "name": f"t3_{i}", "title": f"Acme Coffee post {i}", "selftext": "",
                                        "score": 1, "author": "someone", "created_utc": 1733400000.0,
                                        "permalink": f"/r/coffee/comments/{i}/post/"}} for i in ids]
    return json.dumps({"kind": "Listing", "data": {"after": after, "children": children}}).encode()


RATE = {"X-Ratelimit-Remaining": "1", "X-Ratelimit-Reset": "1", "X-Ratelimit-Used": "99"}


def test_reddit_pages_waits_out_429s_and_keeps_to_its_rate_limit_headers(tmp_path):
    seen: dict[str, int] = {}

    def answer(request: ApiRequest) -> Answer:
        query = parse_qs(urlsplit(request.path).query)
        after = query.get("after", [""])[0]
        seen[after] = seen.get(after, 0) + 1
        if after == "" and seen[after] == 1:
            return 429, {}, b'{"message": "Too Many Requests", "error": 429}'  # no Retry-After: back off
        if after == "t3_p2" and seen[after] == 1:
            return 429, {"Retry-After": "1"}, b"{}"
        if after == "":
            return 200, RATE, listing(["p1", "p2"], "t3_p2")
        return 200, RATE, listing(["p3"], None)

    with ApiServer(answer) as api:
        result = crawl(tmp_path, "reddit", api.url, {"query": "Acme Coffee", "username": "acme_watch"})
        log = api.requests

    assert result.code == 0, result.stderr
    assert [urlsplit(r.path).path for r in log] == ["/search.json"] * 4  # no robots.txt: the API's rules apply
    assert parse_qs(urlsplit(log[0].path).query) == {"q": ["Acme Coffee"], "sort": ["new"], "limit": ["100"],
                                                     "raw_json": ["1"]}
    assert all(r.headers["user-agent"] == "python:repwatch:0.1.0 (by /u/acme_watch)" for r in log)
    gaps = [later.at - earlier.at for earlier, later in pairwise(log)]
    assert gaps[0] >= 0.95  # exponential backoff's first step (1 s), not an immediate retry
    assert gaps[1] >= 0.95  # X-Ratelimit-Remaining 1 with the reset in 1 s
    assert gaps[2] >= 0.95  # Retry-After: 1
    ids, state, error = stored(tmp_path)
    assert ids == ["t3_p1", "t3_p2", "t3_p3"] and state == "ok" and error is None


def test_reddit_with_oauth_credentials_and_when_they_are_refused(tmp_path):
    def answer(request: ApiRequest) -> Answer:
        if request.path == "/api/v1/access_token":
            good = base64.b64encode(b"app-id:app-secret").decode()
            if request.method != "POST" or request.headers.get("authorization") != f"Basic {good}" \
                    or request.body != b"grant_type=client_credentials":
                return 401, {}, b'{"message": "Unauthorized", "error": 401}'
            return 200, {}, b'{"access_token": "tok-123", "token_type": "bearer", "expires_in": 86400}'
        if request.headers.get("authorization") != "bearer tok-123":
            return 401, {}, b'{"message": "Unauthorized", "error": 401}'
        return 200, {"X-Ratelimit-Remaining": "99", "X-Ratelimit-Reset": "60"}, listing(["o1"], None)

    with ApiServer(answer) as api:
        options = {"subreddit": "coffee", "username": "acme_watch", "client_id_env": "REDDIT_ID",
                   "client_secret_env": "REDDIT_SECRET", "token_url": api.url + "/api/v1/access_token",
                   "oauth_url": api.url}
        ok = crawl(tmp_path, "reddit", api.url, options, env={"REDDIT_ID": "app-id", "REDDIT_SECRET": "app-secret"})
        assert ok.code == 0, ok.stderr
        assert [r.path for r in api.requests] == ["/api/v1/access_token", "/r/coffee/new.json?limit=100&raw_json=1"]
        assert stored(tmp_path)[:2] == (["t3_o1"], "ok")

        refused = crawl(tmp_path, "reddit", api.url, options, env={"REDDIT_ID": "app-id", "REDDIT_SECRET": "wrong"})
        missing = crawl(tmp_path, "reddit", api.url, options, env={"REDDIT_ID": "app-id", "REDDIT_SECRET": ""})

    assert refused.code == 1
    lines = [line for line in refused.stderr.splitlines() if line.startswith("repwatch:")]
    assert lines == [f"repwatch: source acme-reddit failed: authentication failed (HTTP 401): check the OAuth app's "
                     f"credentials in REDDIT_ID and REDDIT_SECRET at {api.url}/api/v1/access_token"], refused.stderr
    assert "wrong" not in refused.stderr and "app-secret" not in refused.stderr
    assert missing.code == 1 and "environment variable REDDIT_SECRET (options.client_secret_env) is not set" in missing.stderr
    ids, state, error = stored(tmp_path)
    assert ids == ["t3_o1"] and state == "failing" and "REDDIT_SECRET" in error  # what was stored stays


def test_an_api_that_keeps_answering_429_fails_the_source_after_backing_off(tmp_path):
    with ApiServer(lambda request: (429, {}, b"{}")) as api:
        result = crawl(tmp_path, "hackernews", api.url, {"query": "acme"})
        log = api.requests
    assert result.code == 1
    assert "rate-limited (HTTP 429) after 5 tries, not read this run" in result.stderr
    gaps = [later.at - earlier.at for earlier, later in pairwise(log)]
    # exponential backoff: each wait at least twice the last (1, 2, 4, 8 s); only lower bounds (a busy machine is late)
    assert len(log) == 5 and all(gap >= 0.95 * 2 ** i for i, gap in enumerate(gaps)), gaps
    assert stored(tmp_path)[1] == "failing"


def _google_play(request: ApiRequest) -> Answer:
    if request.path.startswith("/store/apps/details"):
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page("google_play.html")
    if request.path.startswith("/_/PlayStoreUi/data/batchexecute") and request.method == "POST":
        inner = json.loads(json.loads(parse_qs(request.body.decode())["f.req"][0])[0][0][1])
        name = "google_play_batch_page3.txt" if inner[2][2][2] == "TOKEN-PAGE-3" else "google_play_batch_page2.txt"
        return 200, {"Content-Type": "application/json+protobuf; charset=utf-8"}, page(name)
    return 404, {}, b""


def _app_store(request: ApiRequest) -> Answer:
    xml = page("app_store.xml")
    if "/page=2/" in request.path:
        xml = xml.replace(b"91000000", b"92000000")
    return 200, {"Content-Type": "application/xml"}, xml


def _bluesky(request: ApiRequest) -> Answer:
    if "cursor=2" in request.path:
        return 200, {"RateLimit-Remaining": "2999", "RateLimit-Reset": "1"}, b'{"posts": []}'
    return 200, {}, page("bluesky_search.json")


def _mastodon(request: ApiRequest) -> Answer:
    if "max_id" in request.path:
        return 200, {}, b"[]"
    host = request.headers["host"]
    return 200, {"Link": f'<http://{host}/api/v1/timelines/tag/AcmeCoffee?limit=40&max_id=1>; rel="next"'}, \
        page("mastodon_tag.json")


def _hackernews(request: ApiRequest) -> Answer:
    if "page=1" in request.path:
        return 200, {}, json.dumps({"hits": [{"objectID": "7", "author": "x", "comment_text": "Acme again",
                                              "created_at": "2024-12-01T00:00:00Z"}], "page": 1, "nbPages": 2}).encode()
    return 200, {}, page("hackernews_search.json")


@pytest.mark.parametrize("kind, path, options, answer, expected", [
    ("google_play", "/store/apps/details?id=com.acme.orders&hl=en&gl=GB", {}, _google_play,
     [f"gp:AOqpTOtest00{n}" for n in range(1, 7)]),
    ("app_store", "", {"app_id": "1555000222", "country": "gb"}, _app_store,
     ["9100000003", "9100000002", "9100000001", "9200000003", "9200000002", "9200000001"]),
    ("bluesky", "", {"query": "Acme Coffee"}, _bluesky,
     ["at://did:plc:abc123/app.bsky.feed.post/3lbqtest1", "at://did:plc:def456/app.bsky.feed.post/3lbqtest2"]),
    ("mastodon", "", {"hashtag": "AcmeCoffee"}, _mastodon,
     ["https://mastodon.example/users/ana/statuses/113600000000000002", "https://other.example/users/cy/statuses/99"]),
    ("hackernews", "", {"query": "Acme Coffee"}, _hackernews, ["42300002", "42300000", "42299999", "7"]),
])
def test_each_api_kind_reads_every_page(tmp_path, kind, path, options, answer, expected):
    with ApiServer(answer) as api:
        result = crawl(tmp_path, kind, api.url + path, options)
    assert result.code == 0, result.stderr
    ids, state, _ = stored(tmp_path)
    assert ids == expected and state == "ok"


@pytest.mark.parametrize("kind, options", [
    ("bluesky", {"query": "acme"}), ("mastodon", {"query": "acme"}), ("hackernews", {"query": "acme"}),
    ("app_store", {"app_id": "1", "country": "us"}),
])
def test_an_api_refusing_us_is_one_line_and_a_failing_source(tmp_path, kind, options):
    body = b'{"error": "AuthMissing", "message": "Authentication Required"}'
    with ApiServer(lambda request: (401, {}, body)) as api:
        result = crawl(tmp_path, kind, api.url, options)
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert result.code == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"repwatch: source acme-{kind} failed: authentication failed (HTTP 401)")
    assert stored(tmp_path)[1] == "failing"


def test_an_app_reviews_version_and_a_posts_votes_are_stored_and_listed(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "hn").mkdir()
    with ApiServer(_app_store) as api:
        assert crawl(tmp_path / "app", "app_store", api.url, {"app_id": "1555000222", "country": "gb"}).code == 0
    with ApiServer(_hackernews) as api:
        assert crawl(tmp_path / "hn", "hackernews", api.url, {"query": "Acme Coffee"}).code == 0
    app = [json.loads(line) for line in run_cli(
        "reviews", "--format", "json", "--config", str(tmp_path / "app" / "config.yaml")).stdout.splitlines()]
    hn = [json.loads(line) for line in run_cli(
        "reviews", "--format", "json", "--config", str(tmp_path / "hn" / "config.yaml")).stdout.splitlines()]
    assert app and all(review["app_version"] for review in app)  # every entry of the feed names its version
    assert {review["votes"] for review in hn} - {None}  # points where the API gives them
    assert all(review["app_version"] is None for review in hn)
