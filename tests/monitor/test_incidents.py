"""One complaint on many sites is one incident: the matching on our own texts, then linking, threading and by hand."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from demo.slack_receiver import SlackReceiver
from models.store import store_reviews
from models.tables import Business, Incident, Review, Source
from monitor.config import parse_config
from monitor.incidents import Name, Post, match
from monitor.sentiment import Scorer
from monitor.service.alerting import deliver
from monitor.service.incidents import incident, link, open_incidents, unlink
from monitor.service.scoring import score_pending
from monitor.service.work import Actor, WorkError, assign, review_events, set_status
from spiders.items import ReviewItem

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

# Our own complaints (written for these tests): one re-posted with edits, and others about the same things.
LATE_PARCEL = ("I ordered a birthday cake for my daughter on Monday and paid for next-day delivery. It arrived on "
               "Thursday, squashed, after the party. Customer service promised a refund twice and nothing came. "
               "I will never order from this bakery again.")
LATE_PARCEL_REPOST = ("Paid for next-day delivery of a birthday cake for my daughter, ordered on monday. it arrived "
                      "on thursday squashed, after the party!! I will never order from this bakery again. Customer "
                      "servise promised a refund twice and nothing came. Posting this everywhere until they answer.")
OTHER_LATE_PARCEL = ("My order of sourdough loaves was supposed to arrive on Friday with next-day delivery but it "
                     "came a week later and the bread was stale. Nobody answered my emails about it.")
RUDE_STAFF = ("The woman at the till was rude to my elderly mother and refused to let her use the toilet. We left "
              "without buying anything and will not be back.")


def post(n: int, text: str, author: str | None = "Anonymous", *, hours: float = 0, business: int = 1) -> Post:
    return Post(n, business, NOW - timedelta(hours=hours), author, text)


# --- matching ------------------------------------------------------------------------------------------------


def test_a_complaint_reposted_with_edits_links_by_its_text_alone():
    found = match(post(2, LATE_PARCEL_REPOST, "A Google user"), post(1, LATE_PARCEL, "Anonymous", hours=30))
    assert found is not None and found.post.id == 1
    assert found.reason.startswith("near-duplicate text (Jaccard")


def test_two_different_complaints_about_the_same_thing_do_not_link():
    assert match(post(2, OTHER_LATE_PARCEL), post(1, LATE_PARCEL, hours=5)) is None
    assert match(post(2, RUDE_STAFF), post(1, LATE_PARCEL, hours=5)) is None


def test_placeholder_and_partial_names_never_link_by_the_name_alone():
    for name in ("Anonymous", "A Google user", "  a GOOGLE user ", "", None, "Verified Buyer", "Gość", "Ανώνυμος",
                 "Maria", "J. D."):
        assert not Name.of(name).distinctive, name
        assert match(post(2, RUDE_STAFF, name), post(1, LATE_PARCEL, name, hours=3)) is None, name


def test_the_same_full_name_links_however_it_is_typed():
    found = match(post(2, RUDE_STAFF, "ZOË  O'NEIL"), post(1, LATE_PARCEL, "Zoe O Neil", hours=3))
    assert found is not None and "same author" in found.reason


def test_an_abbreviated_surname_links_only_with_similar_text():
    shorter = "Ordered a birthday cake for my daughter with next-day delivery. It arrived on Thursday, squashed."
    assert match(post(2, shorter, "Jane D."), post(1, LATE_PARCEL, "Jane Doe", hours=3)) is not None
    assert match(post(2, RUDE_STAFF, "Jane D."), post(1, LATE_PARCEL, "Jane Doe", hours=3)) is None
    assert match(post(2, shorter, "John D."), post(1, LATE_PARCEL, "Jane Doe", hours=3)) is None


def test_another_business_or_more_than_14_days_apart_never_links():
    assert match(post(2, LATE_PARCEL, "Jane Doe", business=2), post(1, LATE_PARCEL, "Jane Doe")) is None
    assert match(post(2, LATE_PARCEL, "Jane Doe"), post(1, LATE_PARCEL, "Jane Doe", hours=15 * 24)) is None
    assert match(post(2, LATE_PARCEL, "Jane Doe"), post(1, LATE_PARCEL, "Jane Doe", hours=13 * 24)) is not None


def test_a_short_stock_phrase_is_not_evidence_of_one_complaint():
    assert match(post(2, "Terrible service, never again."), post(1, "Terrible service, never again.")) is None


# Our small labelled set: (first post, second post, same complaint?), authors as sites show them.
HAND_LABELLED = [
    ((LATE_PARCEL, "Jane Doe"), (LATE_PARCEL_REPOST, "jane doe"), True),
    ((LATE_PARCEL, "Jane Doe"), (LATE_PARCEL_REPOST, "Anonymous"), True),
    ((RUDE_STAFF, "Tom Briggs"), ("Rude woman at the till refused to let my elderly mother use the toilet. "
                                  "Will not be back.", "Tom B."), True),
    ((RUDE_STAFF, "Tom Briggs"), ("Disgusting. The woman at the till was rude to my elderly mother and refused to "
                                  "let her use the toilet. We left without buying anything and will not be back.",
                                  "A Google user"), True),
    ((LATE_PARCEL, "Jane Doe"), (OTHER_LATE_PARCEL, "Jane Smith"), False),
    ((LATE_PARCEL, "Anonymous"), (OTHER_LATE_PARCEL, "Anonymous"), False),
    ((LATE_PARCEL, "Maria"), (RUDE_STAFF, "Maria"), False),
    (("The coffee was cold and the croissant stale. Overpriced for what you get.", "Sam"),
     ("The tea was cold and the muffin dry. Overpriced for what you get here.", "Sam K."), False),
    (("Waited forty minutes for a table we had booked, then the kitchen closed early.", "Ola Nowak"),
     ("We booked a table and still waited forty minutes, then they said the kitchen was closing.", "Piotr Nowak"),
     False),
]


@pytest.mark.parametrize(("first", "second", "same"), HAND_LABELLED)
def test_our_hand_labelled_pairs(first, second, same):
    assert (match(post(2, *second), post(1, *first, hours=20)) is not None) is same


# --- in the database: linking as reviews are scored, threading, by hand ---------------------------------------


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


def config_for(slack: SlackReceiver):
    return parse_config(f"""
notifiers:
  slack: {{kind: slack, token: xoxb-test-bot-token, channel: "#reviews", api_url: "{slack.api_url}", min_interval: 0}}
  hook: {{kind: slack, webhook_url: "{slack.webhook_url()}", min_interval: 0}}
businesses:
  - name: Acme
    notify: [slack, hook]
    sources:
      - {{name: acme-tp, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}}
      - {{name: acme-web, kind: schema_org, url: "https://acme.example/reviews"}}
  - name: Other
    notify: [slack]
    sources:
      - {{name: other-tp, kind: trustpilot, url: "https://www.trustpilot.com/review/other.example"}}
""", env={})


def add_source(sessions, name: str, business: str = "Acme") -> int:
    urls = {"acme-tp": ("trustpilot", "https://www.trustpilot.com/review/acme.example"),
            "acme-web": ("schema_org", "https://acme.example/reviews"),
            "other-tp": ("trustpilot", "https://www.trustpilot.com/review/other.example")}
    with sessions.begin() as session:
        owner = session.scalar(select(Business).where(Business.name == business)) or Business(name=business)
        kind, url = urls[name]
        source = Source(name=name, kind=kind, url=url, business=owner, state="ok", baseline_at=NOW - timedelta(days=3))
        session.add(source)
        session.flush()
        return source.id


def publish(sessions, source_id: int, name: str, key: str, body: str, author: str, *, at: datetime = NOW,
            hours_ago: float = 1) -> int:
    item = ReviewItem(source=name, external_id=key, url=f"https://reviews.example/{name}/{key}", author=author,
                      rating=1, title=None, body=body, published_at=at - timedelta(hours=hours_ago), language="en",
                      reply=None)
    with sessions.begin() as session:
        store_reviews(session, source_id, [item], now=at)
        return session.scalar(select(Review.id).where(Review.source_id == source_id, Review.external_id == key))


def texts(message) -> str:
    parts = [message["text"] or ""]
    for block in message["blocks"] or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for element in block.get("fields", []) + block.get("elements", []):
            if isinstance(element, dict) and isinstance(element.get("text"), (str, dict)):
                parts.append(element["text"] if isinstance(element["text"], str) else element["text"]["text"])
    return "\n".join(parts)


def test_a_repost_on_another_site_joins_the_incident_and_its_alert_goes_into_the_first_alerts_thread(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = config_for(slack)
        tp, web = add_source(sessions, "acme-tp"), add_source(sessions, "acme-web")
        first = publish(sessions, tp, "acme-tp", "a", LATE_PARCEL, "Jane Doe", hours_ago=5)
        score_pending(sessions, config, scorer, now=NOW)
        deliver(sessions, config, now=lambda: NOW, sleep=lambda s: None)
        later = NOW + timedelta(hours=20)
        second = publish(sessions, web, "acme-web", "b", LATE_PARCEL_REPOST, "A Google user", at=later)
        unrelated = publish(sessions, web, "acme-web", "c", RUDE_STAFF, "Tom Briggs", at=later)
        score_pending(sessions, config, scorer, now=later)
        deliver(sessions, config, now=lambda: later, sleep=lambda s: None)

        with sessions() as session:
            reviews = {r.id: r for r in session.scalars(select(Review))}
            assert reviews[first].incident_id is not None and reviews[first].incident_id == reviews[second].incident_id
            assert reviews[unrelated].incident_id is None
            found = session.get(Incident, reviews[first].incident_id)
            assert found.first_review_id == first and "near-duplicate text" in found.reason

        by_review = {}
        for message in slack.messages:
            for review_id in (first, second, unrelated):
                if f"review #{review_id}" in texts(message):
                    by_review.setdefault(review_id, []).append(message)
        # the bot-token destination threads: the repost is a reply under the first alert
        first_alert = next(m for m in by_review[first] if m["kind"] == "post")
        threaded = [m for m in by_review[second] if m["kind"] == "post"]
        assert len(threaded) == 1 and threaded[0]["thread_ts"] == first_alert["ts"]
        assert "Also posted on" in texts(threaded[0]) and "the same complaint as the alert above" in texts(threaded[0])
        # the webhook cannot thread: a normal alert that says where else it was posted
        flat = [m for m in by_review[second] if m["kind"] == "webhook"]
        assert len(flat) == 1 and "Also posted on\nTrustpilot" in texts(flat[0])
        assert not any(m.get("thread_ts") for m in by_review[unrelated])


def test_resolving_one_post_resolves_the_incident_and_the_listing_shows_it_once(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = config_for(slack)
        tp, web = add_source(sessions, "acme-tp"), add_source(sessions, "acme-web")
        first = publish(sessions, tp, "acme-tp", "a", LATE_PARCEL, "Jane Doe")
        second = publish(sessions, web, "acme-web", "b", RUDE_STAFF, "jane  DOE")  # same person, another complaint
        score_pending(sessions, config, scorer, now=NOW)
        [listed] = open_incidents(sessions)
        assert {p.review_id for p in listed.posts} == {first, second} and listed.sites == ("Trustpilot", "acme.example")
        assert "same author “jane doe”" in listed.reason
        set_status(sessions, second, "resolved", Actor("ana", "cli"), now=NOW)
        with sessions() as session:
            assert {r.status for r in session.scalars(select(Review))} == {"resolved"}
        assert open_incidents(sessions) == [] and len(open_incidents(sessions, include_settled=True)) == 1


def test_a_new_post_of_a_complaint_somebody_has_is_theirs_too(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = config_for(slack)
        tp, web = add_source(sessions, "acme-tp"), add_source(sessions, "acme-web")
        first = publish(sessions, tp, "acme-tp", "a", LATE_PARCEL, "Jane Doe", hours_ago=5)
        score_pending(sessions, config, scorer, now=NOW)
        assign(sessions, first, Actor("ana", "web"), now=NOW)
        later = NOW + timedelta(hours=3)
        second = publish(sessions, web, "acme-web", "b", LATE_PARCEL_REPOST, "A Google user", at=later)
        score_pending(sessions, config, scorer, now=later)
        with sessions() as session:
            repost = session.get(Review, second)
            assert (repost.assignee, repost.status) == ("ana", "assigned")  # in ana's work, not a new post nobody has
        assert [(e.actor, e.action, e.after) for e in review_events(sessions, second)][-2:] == [
            ("repwatch", "assign", "ana"), ("repwatch", "status", "assigned")]


def test_another_business_or_history_never_joins(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = config_for(slack)
        tp, other = add_source(sessions, "acme-tp"), add_source(sessions, "other-tp", "Other")
        publish(sessions, tp, "acme-tp", "a", LATE_PARCEL, "Jane Doe")
        publish(sessions, other, "other-tp", "b", LATE_PARCEL, "Jane Doe")
        score_pending(sessions, config, scorer, now=NOW)
        with sessions() as session:
            assert session.scalars(select(Review.incident_id)).all() == [None, None]


def test_a_person_links_and_unlinks_and_the_linker_leaves_their_decision_alone(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = config_for(slack)
        tp, web = add_source(sessions, "acme-tp"), add_source(sessions, "acme-web")
        other = add_source(sessions, "other-tp", "Other")
        first = publish(sessions, tp, "acme-tp", "a", LATE_PARCEL, "Jane Doe")
        second = publish(sessions, web, "acme-web", "b", RUDE_STAFF, "Tom Briggs")
        stranger = publish(sessions, other, "other-tp", "c", RUDE_STAFF, "Tom Briggs")
        score_pending(sessions, config, scorer, now=NOW)
        assert open_incidents(sessions) == []

        incident_id = link(sessions, second, first, Actor("ana", "cli"), now=NOW)
        shown = incident(sessions, incident_id)
        assert [p.review_id for p in shown.posts] == [first, second] and "linked by ana" in shown.reason
        assert [(e.action, e.actor, e.after) for e in review_events(sessions, second)][-1][:2] == ("link", "ana")
        with pytest.raises(WorkError, match="different businesses"):
            link(sessions, stranger, first, Actor("ana", "cli"))

        assert unlink(sessions, second, Actor("ben", "cli"), now=NOW) == incident_id
        with sessions() as session:  # an incident of one post is no incident
            assert session.scalars(select(Review.incident_id)).all() == [None, None, None]
            assert session.scalars(select(Incident)).all() == []
        event = review_events(sessions, second)[-1]
        assert (event.action, event.actor, event.before, event.after) == ("link", "ben", f"incident #{incident_id}", None)

        # rescored after an edit, the unlinked review matches its old partner by text: it stays on its own
        third = publish(sessions, web, "acme-web", "d", LATE_PARCEL_REPOST, "A Google user")
        with sessions.begin() as session:
            session.get(Review, second).body = LATE_PARCEL
            session.get(Review, second).scored_at = None
        score_pending(sessions, config, scorer, now=NOW)
        with sessions() as session:
            reviews = {r.id: r for r in session.scalars(select(Review))}
            assert reviews[second].incident_id is None
            assert reviews[third].incident_id is not None and reviews[third].incident_id == reviews[first].incident_id
