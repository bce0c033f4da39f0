"""google_business end to end: `repwatch crawl`, `repwatch reply` and `repwatch auth google` against a local
stand-in of Google's token endpoint and Business Profile API (tests/e2e/google_api.py)."""
from __future__ import annotations

import json
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
    gaps = [b.at - a.at for a, b in pairwise(calls)]
    assert len(gaps) == 2 and gaps[0] >= 0.95 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s (lower bounds only)
    with db(tmp_path) as session:
        assert session.scalars(select(Source)).one().state == "failing"


# --- repwatch reply -----------------------------------------------------------------------------------------------


def crawled(tmp_path: Path, google: GoogleAPI, extra_sources: str = "") -> tuple[Path, dict[str, int]]:
    """A config whose google source has been crawled once; review ids by external id."""
    google.grant("1//refresh-token-A", access_token="ya29.valid")
    store_token(tmp_path, access="ya29.valid")
    config = write_config(tmp_path, google, extra_sources)
    assert crawl(config, tmp_path).code in (0, 1)
    with db(tmp_path) as session:
        return config, {r.external_id: r.id for r in session.scalars(select(Review))}


def reply(config: Path, tmp: Path, *args: str, input: str | None = None):
    return run_cli("reply", *args, "--config", str(config), env=ENV, cwd=tmp, input=input)


def test_reply_posts_through_update_reply_after_the_owner_agrees(tmp_path, google):
    config, ids = crawled(tmp_path, google)
    text = tmp_path / "reply.txt"
    text.write_text("We are sorry, Reviewer 5. Please write to us at hello@acme.example.\n")
    google.expire_access_tokens()  # the stored access token has expired since: refreshed, and the PUT sent again

    declined = reply(config, tmp_path, str(ids["r0005"]), "--text-file", str(text), input="n\n")
    assert declined.code == 1 and "repwatch: not posted" in declined.stderr
    assert "Cold coffee and a rude barista." in declined.stderr and "Post this reply on Google?" in declined.stderr
    assert not google.calls_to("/reply")  # nothing posted without a yes

    agreed = reply(config, tmp_path, str(ids["r0005"]), "--text-file", str(text), input="y\n")
    assert agreed.code == 0, agreed.stderr
    assert f"reply posted on Google to review #{ids['r0005']} at " in agreed.stdout
    assert agreed.stdout.rstrip().endswith("; the review is marked replied")
    listed = run_cli("reviews", "--format", "json", "--config", str(config), env=ENV, cwd=tmp_path)
    shown = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert shown[ids["r0005"]]["status"] == "replied"  # recorded at once, by whoever ran the command
    puts = google.calls_to("/reply")
    assert [(c.method, c.status) for c in puts] == [("PUT", 401), ("PUT", 200)]
    assert puts[-1].path == "/v4/accounts/111/locations/222/reviews/r0005/reply"
    assert json.loads(puts[-1].body) == {"comment": "We are sorry, Reviewer 5. Please write to us at hello@acme.example."}
    assert google.state.replies == {"r0005": "We are sorry, Reviewer 5. Please write to us at hello@acme.example."}
    for secret in (CLIENT_SECRET, "1//refresh-token-A", "ya29."):
        assert secret not in agreed.stdout + agreed.stderr

    again = reply(config, tmp_path, str(ids["r0004"]), "--text-file", str(text), "--yes")
    assert again.code == 0 and google.state.replies["r0004"]


def test_reply_on_another_site_says_where_to_answer(tmp_path, google):
    other = textwrap.indent(textwrap.dedent(f"""\
        - name: acme-feed
          kind: feed
          url: {google.url}/feed.xml
    """), " " * 6)
    config, _ = crawled(tmp_path, google, other)
    with db(tmp_path) as session:
        feed = session.scalars(select(Source).where(Source.name == "acme-feed")).one()
        session.add(Review(source_id=feed.id, external_id="x1", url="https://reviews.example/r/x1", body="Bad.",
                           content_hash="0" * 64))
        session.commit()
        review_id = session.scalars(select(Review.id).where(Review.external_id == "x1")).one()
    text = tmp_path / "reply.txt"
    text.write_text("Sorry.")
    result = reply(config, tmp_path, str(review_id), "--text-file", str(text), "--yes")
    assert result.code == 1
    assert result.stderr.strip() == "repwatch cannot post on reviews.example; answer at https://reviews.example/r/x1"
    assert not google.calls_to("/reply")


def test_reply_with_a_revoked_authorisation_marks_the_source_failing(tmp_path, google):
    config, ids = crawled(tmp_path, google)
    google.revoke()
    text = tmp_path / "reply.txt"
    text.write_text("Thanks!")
    result = reply(config, tmp_path, str(ids["r0001"]), "--text-file", str(text), "--yes")
    assert result.code == 1
    assert result.stderr.strip() == ("repwatch: Google refused the stored authorisation (invalid_grant: revoked or "
                                     "expired): run `repwatch auth google` again")
    with db(tmp_path) as session:
        assert session.scalars(select(Source)).one().state == "failing"
    assert not google.state.replies


def test_an_empty_reply_is_refused(tmp_path, google):
    config, ids = crawled(tmp_path, google)
    text = tmp_path / "reply.txt"
    text.write_text("  \n")
    result = reply(config, tmp_path, str(ids["r0001"]), "--text-file", str(text), "--yes")
    assert (result.code, result.stderr.strip()) == (1, "repwatch: the reply is empty: nothing posted")


# --- repwatch auth google -----------------------------------------------------------------------------------------


def test_auth_google_stores_the_refresh_token_from_the_loopback_redirect(tmp_path, google):
    config = write_config(tmp_path, google)
    running = start_process("auth", "google", "--config", str(config), env=ENV, cwd=tmp_path)
    try:
        [url] = running.wait_for(f"{google.url}/o/oauth2/v2/auth?")
        query = {key: values[0] for key, values in parse_qs(urlsplit(url.strip()).query).items()}
        assert query["client_id"] == CLIENT_ID and query["access_type"] == "offline"
        assert query["scope"] == "https://www.googleapis.com/auth/business.manage"
        assert query["redirect_uri"].startswith("http://127.0.0.1:") and query["code_challenge_method"] == "S256"
        # The owner agrees: Google issues a code for this PKCE challenge and sends the browser to the redirect URI.
        google.state.codes["4/0code-from-google"] = query["code_challenge"]
        wrong_state = httpx.get(query["redirect_uri"], params={"code": "4/0code-from-google", "state": "forged"})
        assert wrong_state.status_code == 400
        page = httpx.get(query["redirect_uri"], params={"code": "4/0code-from-google", "state": query["state"]})
        assert page.status_code == 200 and "authorised" in page.text
        assert running.proc.wait(30) == 0
    finally:
        running.terminate()
    token_file = tmp_path / "data" / "google-oauth.json"
    assert json.loads(token_file.read_text())["refresh_token"] == "1//refresh-from-consent"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert not any(secret in line for line in running.lines for secret in (CLIENT_SECRET, "4/0code", "1//refresh"))
    # The stored authorisation is what the crawl uses.
    assert crawl(config, tmp_path).code == 0


def test_auth_google_without_a_google_source_says_so(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    result = run_cli("auth", "google", "--config", str(config), cwd=tmp_path)
    assert result.code == 1
    assert result.stderr.strip() == ("repwatch: no google_business source in the config: add one first "
                                     "(docs/sources.md, Google Business Profile)")
