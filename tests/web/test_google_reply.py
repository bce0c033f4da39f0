"""Posting the team's draft as the business's reply on Google from a review's page: a confirmation first, the same
service as `repwatch reply`, the review recorded as replied; against the local stand-in of Google's API."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from models.tables import Business, Review, Source
from monitor.config import parse_config
from monitor.service.work import review_events
from monitor.web.server import WebServer
from tests.e2e.google_api import CLIENT_ID, CLIENT_SECRET, GoogleAPI
from tests.e2e.test_google_business import google, store_token  # noqa: F401  (google: the stand-in's fixture)
from tests.web.conftest import Inbox, add_people, csrf_of, version_of

DIGEST = re.compile(r'name="digest" value="([0-9a-f]+)"')
DRAFT = "Dear Reviewer 5, we are sorry the coffee was cold: the next one is on us. Ana, Acme Coffee"
CONFIRM = "Post this text as the business's public reply on Google?"


@dataclass(frozen=True)
class Reviews:
    cold: int  # a 1★ Google review, no reply yet
    answered: int  # a 4★ Google review that has the business's reply on Google
    trustpilot: int  # a review on a site repwatch does not post to


def config_for(tmp_path, database_url: str, google_api: GoogleAPI):
    return parse_config(f"""
data_dir: {tmp_path / 'data'}
database: {database_url}
businesses:
  - name: Acme Coffee
    sources:
      - name: acme-google
        kind: google_business
        url: {google_api.reviews_url}
        options:
          client_id: {CLIENT_ID}
          client_secret: {CLIENT_SECRET}
          token_url: {google_api.url}/token
          auth_url: {google_api.url}/o/oauth2/v2/auth
      - name: acme-trustpilot
        kind: trustpilot
        url: https://www.trustpilot.com/review/acme.example
web:
  port: 0
""")


def seed(sessions, google_api: GoogleAPI) -> Reviews:
    now = datetime.now(UTC)
    with sessions.begin() as session:
        business = Business(name="Acme Coffee")
        on_google = Source(business=business, name="acme-google", kind="google_business", url=google_api.reviews_url)
        trustpilot = Source(business=business, name="acme-trustpilot", kind="trustpilot",
                            url="https://www.trustpilot.com/review/acme.example")

        def post(source: Source, external_id: str, stars: int, body: str, **more: object) -> Review:
            review = Review(source=source, external_id=external_id, url=f"https://reviews.example/{external_id}",
                            author=f"Reviewer {external_id}", rating=stars, body=body, language="en",
                            content_hash=external_id, published_at=now - timedelta(hours=5),
                            first_seen_at=now - timedelta(hours=4), sentiment_label="neg", sentiment_lang="en",
                            severity="normal", status="new", **more)
            session.add(review)
            return review

        cold = post(on_google, "r0005", 1, "Cold coffee and a rude barista.")
        answered = post(on_google, "r0004", 2, "Slow service.", reply_body="Sorry, we were short-staffed.")
        elsewhere = post(trustpilot, "tp1", 1, "Never again.")
        session.flush()
        return Reviews(cold.id, answered.id, elsewhere.id)


@pytest.fixture
def team(tmp_path, database_url, google):  # noqa: F811  (the stand-in's fixture, imported above)
    """The inbox over a database holding Google reviews, with repwatch authorised at the stand-in."""
    from models.db import connect, migrate, session_factory

    engine = connect(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    reviews = seed(sessions, google)
    add_people(sessions)
    google.grant("1//refresh-token-A", access_token="ya29.valid")
    store_token(tmp_path, access="ya29.valid")
    config = config_for(tmp_path, database_url, google)
    with WebServer(config, sessions=sessions) as server:
        yield Inbox(server, reviews, sessions, config), google
    engine.dispose()


def flash(client: httpx.Client, response: httpx.Response) -> list[str]:
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    return [unescape(m) for m in re.findall(r'<p class="flash" role="status">([^<]*)</p>', page.text)]


def save_draft_and_confirm(client: httpx.Client, review_id: int, text: str) -> httpx.Response:
    """The review page's "Post this reply on Google…": saves the textarea, then shows the confirmation."""
    page = client.get(f"/reviews/{review_id}")
    answer = client.post(f"/reviews/{review_id}/draft", data={
        "csrf": csrf_of(page.text), "seen_version": version_of(page.text), "text": text, "then": "google"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/reviews/{review_id}/google-reply"
    return client.get(answer.headers["location"])


def status_of(inbox: Inbox, review_id: int) -> tuple[str, datetime | None]:
    with inbox.sessions() as session:
        review = session.get(Review, review_id)
        return review.status, review.first_reply_at


def test_a_member_posts_the_teams_draft_only_after_confirming_and_the_review_is_replied(team):
    inbox, google_api = team
    review_id = inbox.seeded.cold
    client = inbox.login("max")
    page = client.get(f"/reviews/{review_id}")
    assert "Post this reply on Google…" in page.text and "Answer it on" in page.text

    confirm = save_draft_and_confirm(client, review_id, DRAFT)
    assert confirm.status_code == 200
    text = unescape(confirm.text)
    assert CONFIRM in text and DRAFT in text and "Cold coffee and a rude barista." in text
    assert "It replaces" not in text
    assert not google_api.calls_to("/reply")  # the draft is saved, nothing posted yet
    assert status_of(inbox, review_id) == ("new", None)

    # The confirmation's form without its token, or a GET of it, posts nothing.
    digest = DIGEST.search(confirm.text)[1]
    assert client.post(f"/reviews/{review_id}/google-reply", data={"digest": digest}).status_code == 403
    assert client.get(f"/reviews/{review_id}/google-reply").status_code == 200
    assert not google_api.calls_to("/reply")

    posted = client.post(f"/reviews/{review_id}/google-reply", data={"csrf": csrf_of(confirm.text), "digest": digest})
    assert flash(client, posted) == ["Reply posted on Google as the business's public reply; marked replied."]
    puts = google_api.calls_to("/reply")
    assert [(c.method, c.path, c.status) for c in puts] == [
        ("PUT", "/v4/accounts/111/locations/222/reviews/r0005/reply", 200)]
    assert json.loads(puts[0].body) == {"comment": DRAFT}
    assert puts[0].headers["Authorization"] == "Bearer ya29.valid"
    status, first_reply_at = status_of(inbox, review_id)
    assert status == "replied" and first_reply_at is not None
    trail = [(e.actor, e.via, e.action, e.before, e.after) for e in review_events(inbox.sessions, review_id)]
    assert ("max", "web", "status", "new", "replied") in trail
    assert ("max", "web", "note", None, f"posted on Google as the business's public reply: {DRAFT}") in trail
    shown = unescape(client.get(f"/reviews/{review_id}").text)
    assert '<span class="status status-replied">replied</span>' in shown
    assert "max <small>(web)</small>" in shown and f"posted on Google as the business's public reply: {DRAFT}" in shown


def test_an_owner_may_post_too_and_the_confirmation_shows_the_reply_it_replaces(team):
    inbox, google_api = team
    client = inbox.login("olivia")
    confirm = save_draft_and_confirm(client, inbox.seeded.answered, "Sorry again: we have hired two more baristas.")
    assert "It replaces the business's reply on Google:" in unescape(confirm.text)
    assert "Sorry, we were short-staffed." in confirm.text
    posted = client.post(f"/reviews/{inbox.seeded.answered}/google-reply",
                         data={"csrf": csrf_of(confirm.text), "digest": DIGEST.search(confirm.text)[1]})
    assert flash(client, posted) == ["Reply posted on Google as the business's public reply; marked replied."]
    assert google_api.state.replies == {"r0004": "Sorry again: we have hired two more baristas."}
    assert status_of(inbox, inbox.seeded.answered)[0] == "replied"


REFUSALS = {
    "429": "Not posted: Google did not take the reply (HTTP 429, RESOURCE_EXHAUSTED Refused by the stand-in): "
           "nothing posted",
    "403": "Not posted: Google did not take the reply (HTTP 403, PERMISSION_DENIED Refused by the stand-in): "
           "nothing posted",
    "revoked": "Not posted: Google refused the stored authorisation (invalid_grant: revoked or expired): "
               "run `repwatch auth google` again",
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refusal_is_one_line_and_nothing_is_recorded(team, refusal):
    inbox, google_api = team
    review_id = inbox.seeded.cold
    if refusal == "revoked":
        google_api.revoke()  # the access token is refused, then the refresh token too
    else:
        google_api.fail_next_reply(int(refusal))
    client = inbox.login("max")
    confirm = save_draft_and_confirm(client, review_id, DRAFT)
    before = review_events(inbox.sessions, review_id)
    answer = client.post(f"/reviews/{review_id}/google-reply",
                         data={"csrf": csrf_of(confirm.text), "digest": DIGEST.search(confirm.text)[1]})
    assert flash(client, answer) == [REFUSALS[refusal]]
    assert status_of(inbox, review_id) == ("new", None)
    assert review_events(inbox.sessions, review_id) == before
    assert google_api.state.replies == {}
    with inbox.sessions() as session:
        source = session.scalars(select(Source).where(Source.name == "acme-google")).one()
        assert source.state == ("failing" if refusal == "revoked" else source.state)
    for secret in ("ya29.valid", "1//refresh-token-A", CLIENT_SECRET):
        assert secret not in answer.text


def test_a_draft_changed_after_the_confirmation_is_not_posted(team):
    inbox, google_api = team
    review_id = inbox.seeded.cold
    client = inbox.login("max")
    confirm = save_draft_and_confirm(client, review_id, DRAFT)
    colleague = inbox.login("nina")
    page = colleague.get(f"/reviews/{review_id}")
    colleague.post(f"/reviews/{review_id}/draft", data={"csrf": csrf_of(page.text), "text": "Something else."})
    answer = client.post(f"/reviews/{review_id}/google-reply",
                         data={"csrf": csrf_of(confirm.text), "digest": DIGEST.search(confirm.text)[1]})
    assert flash(client, answer) == [
        "Not posted: the draft changed after the confirmation was shown. Check it and post again."]
    assert not google_api.calls_to("/reply")
    assert status_of(inbox, review_id) == ("new", None)


def test_reviews_on_other_sites_have_no_post_button_and_cannot_be_posted(team):
    inbox, google_api = team
    review_id = inbox.seeded.trustpilot
    client = inbox.login("max")
    page = client.get(f"/reviews/{review_id}")
    assert "Post this reply on Google" not in page.text
    assert "Answer it on Trustpilot ↗" in page.text
    assert "repwatch never posts it: copy it, then answer on the site." in page.text
    refused = client.get(f"/reviews/{review_id}/google-reply")
    assert refused.status_code == 400
    assert "repwatch cannot post on Trustpilot; answer at https://reviews.example/tp1" in refused.text
    forced = client.post(f"/reviews/{review_id}/google-reply", data={"csrf": csrf_of(page.text), "digest": "0"})
    assert flash(client, forced) == ["Not posted: repwatch cannot post on Trustpilot; answer at "
                                     "https://reviews.example/tp1"]
    assert not google_api.state.calls
    assert status_of(inbox, review_id) == ("new", None)


def test_an_empty_draft_gets_no_confirmation(team):
    inbox, google_api = team
    client = inbox.login("max")
    page = client.get(f"/reviews/{inbox.seeded.cold}")
    answer = client.post(f"/reviews/{inbox.seeded.cold}/draft", data={
        "csrf": csrf_of(page.text), "text": "   ", "then": "google"})
    assert flash(client, answer) == ["Not done: the draft is empty"]
    assert not google_api.state.calls
