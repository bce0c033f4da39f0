"""google_business end to end: `repwatch crawl`, `repwatch reply` and `repwatch auth google` against a local
stand-in of Google's token endpoint and Business Profile API (tests/e2e/google_api.py)."""
from __future__ import annotations

import json
import os
import stat
import textwrap
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models.tables import CrawlRun, Review, Source
from tests.cli import run_cli, start_process
from tests.e2e.google_api import CLIENT_ID, CLIENT_SECRET, GoogleAPI, review

ENV = {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET}


def write_config(tmp: Path, google: GoogleAPI, extra_sources: str = "") -> Path:
    config = tmp / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        data_dir: {tmp / 'data'}
        crawl:
          polite: false
          download_delay: 0
        businesses:
          - name: Acme Coffee
            sources:
              - name: acme-google
                kind: google_business
                url: {google.reviews_url}
                options:
                  client_id: ${{GOOGLE_CLIENT_ID}}
                  client_secret: ${{GOOGLE_CLIENT_SECRET}}
                  token_url: {google.url}/token
                  auth_url: {google.url}/o/oauth2/v2/auth
    """) + extra_sources)
    return config


def store_token(tmp: Path, refresh: str = "1//refresh-token-A", access: str = "ya29.stale", expires_at: float = 4e9) -> Path:
    path = tmp / "data" / "google-oauth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"refresh_token": refresh, "access_token": access, "expires_at": expires_at}))
    path.chmod(0o600)
    return path


def crawl(config: Path, tmp: Path):
    return run_cli("crawl", "--config", str(config), "--no-alerts", env=ENV, cwd=tmp)


def db(tmp: Path) -> Session:
    return Session(create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}"), expire_on_commit=False)


def five_reviews() -> list[dict]:
    return [
        review(5, 1, hours_ago=1, comment="Cold coffee and a rude barista."),
        review(4, 5, hours_ago=5, comment="Lovely place.", reply="Thank you, see you soon!"),
        review(3, 3, hours_ago=9),  # stars only: no comment
        review(2, 2, hours_ago=30, comment="Slow service."),
        review(1, 4, hours_ago=50, comment="Good cake."),
    ]


@pytest.fixture
def google():
    with GoogleAPI() as api:
        api.state.reviews = five_reviews()
        yield api


def test_an_expired_access_token_is_refreshed_and_every_page_read(tmp_path, google):
    google.grant("1//refresh-token-A")  # the stored access token is not valid any more: 401, refresh, retry
    token_file = store_token(tmp_path)
    result = crawl(write_config(tmp_path, google), tmp_path)

    assert result.code == 0, result.stderr
    api_calls = [(c.method, c.path.split("?")[0].rsplit("/", 1)[-1], c.status) for c in google.state.calls]
    assert api_calls == [("GET", "reviews", 401), ("POST", "token", 200)] + [("GET", "reviews", 200)] * 3
    pages = [parse_qs(urlsplit(c.path).query) for c in google.calls_to("/reviews") if c.status == 200]
    assert [p.get("pageToken") for p in pages] == [None, ["tok-2"], ["tok-4"]]
    assert all(p["pageSize"] == ["50"] for p in pages)
    assert all(c.headers["Authorization"] == "Bearer ya29.access-1" for c in google.calls_to("/reviews")[1:])
    with db(tmp_path) as session:
        stored = {r.external_id: r for r in session.scalars(select(Review))}
        source = session.scalars(select(Source)).one()
    assert sorted(stored) == ["r0001", "r0002", "r0003", "r0004", "r0005"]
    assert (stored["r0005"].rating, stored["r0005"].author, stored["r0005"].body) == (
        1, "Reviewer 5", "Cold coffee and a rude barista.")
    assert stored["r0004"].reply_body == "Thank you, see you soon!" and stored["r0004"].reply_published_at
    assert stored["r0003"].body == "" and stored["r0003"].rating == 3
    assert stored["r0001"].published_at is not None and stored["r0001"].published_at.microsecond == 123456
    assert source.state == "ok"
    saved = json.loads(token_file.read_text())
    assert saved == {"refresh_token": "1//refresh-token-A", "access_token": "ya29.access-1",
                     "expires_at": pytest.approx(saved["expires_at"])}
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    log = (tmp_path / "data" / "logs" / "crawl.log").read_text()
    for secret in (CLIENT_SECRET, "1//refresh-token-A", "ya29.access-1"):
        assert secret not in result.stdout + result.stderr + log

    # The next crawl uses the stored access token: no refresh, one page of known reviews and a stop.
    second = crawl(write_config(tmp_path, google), tmp_path)
    assert second.code == 0, second.stderr
    assert len(google.calls_to("/token")) == 1


def test_a_revoked_authorisation_fails_the_source_with_one_line(tmp_path, google):
    store_token(tmp_path, refresh="1//revoked", access="ya29.stale", expires_at=0)  # expired: refreshed first
    result = crawl(write_config(tmp_path, google), tmp_path)

    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("repwatch:")]
    assert lines == ["repwatch: source acme-google failed: Google refused the stored authorisation (invalid_grant: "
                     "revoked or expired): run `repwatch auth google` again"], result.stderr
    assert not google.calls_to("/reviews")  # nothing asked with a token that cannot be had
    with db(tmp_path) as session:
        source = session.scalars(select(Source)).one()
    assert source.state == "failing" and "invalid_grant" in source.last_error
    health = run_cli("sources", "health", "--config", str(write_config(tmp_path, google)), env=ENV, cwd=tmp_path)
    assert "failing" in health.stdout


def test_no_stored_authorisation_says_what_to_run(tmp_path, google):
    result = crawl(write_config(tmp_path, google), tmp_path)
    assert result.code == 1
    assert "not authorised with Google yet: run `repwatch auth google --source acme-google`" in result.stderr
    assert not google.state.calls


@pytest.mark.parametrize("retry_after", ["1", None])
def test_a_429_is_waited_out_with_or_without_retry_after(tmp_path, google, retry_after):
    google.grant("1//refresh-token-A", access_token="ya29.valid")
    store_token(tmp_path, access="ya29.valid")
    google.fail_next(429, {"Retry-After": retry_after} if retry_after else {})
    result = crawl(write_config(tmp_path, google), tmp_path)

    assert result.code == 0, result.stderr
    calls = google.calls_to("/reviews")
    assert [c.status for c in calls] == [429, 200, 200, 200]
    assert calls[1].at - calls[0].at >= 0.95  # Retry-After: 1, or the first step of the backoff (1 s)
    with db(tmp_path) as session:
        run = session.scalars(select(CrawlRun)).one()
    assert run.outcome == "ok" and run.items == 5
    assert run.stats["retry_after/count" if retry_after else "retry_backoff/count"] == 1


def test_a_429_that_does_not_end_fails_the_source_after_backing_off(tmp_path, google):
    google.grant("1//refresh-token-A", access_token="ya29.valid")
    store_token(tmp_path, access="ya29.valid")
    google.fail_next(429, times=3)
    result = crawl(write_config(tmp_path, google), tmp_path)

    assert result.code == 1
    assert "rate-limited by the Google Business Profile API after the retries (HTTP 429, RESOURCE_EXHAUSTED: Quota)" \
        in result.stderr
    calls = google.calls_to("/reviews")
    assert [round(b.at - a.at) for a, b in pairwise(calls)] == [1, 2]  # 1 s, then 2 s
    with db(tmp_path) as session:
        assert session.scalars(select(Source)).one().state == "failing"
