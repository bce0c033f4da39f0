"""The team inbox's reads (monitor/service/inbox.py): the default to-do list, filters, counts, paging, search on
both engines (hostile input included), one review's page, and the dashboard's numbers against the digest's."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from alerts.digest import IsoWeek, build_digest
from models.tables import Business, Delivery, Incident, Review, ReviewVersion, Source
from monitor.config import parse_config
from monitor.service.inbox import (
    ANY,
    InboxError,
    InboxQuery,
    NoSuchReview,
    dashboard,
    inbox,
    review_detail,
)
from monitor.service.scoring import fill_topics
from monitor.service.work import Actor, add_note, assign, save_draft, set_status
from monitor.topics import TopicMatcher, encode_topics

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday in 2026-W48
ALICE = Actor("alice", "web")
CONFIG = parse_config("""
alerting:
  reply_deadline: 48h
businesses:
  - name: Acme Bakery
    sources:
      - {name: acme-trustpilot, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}
      - {name: acme-yelp, kind: yelp, url: "https://www.yelp.com/biz/acme"}
  - name: Other Shop
    sources:
      - {name: other-trustpilot, kind: trustpilot, url: "https://www.trustpilot.com/review/other.example"}
""", env={})


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def seed(sessions) -> dict[str, int]:
    """Acme on Trustpilot and Yelp, Other Shop on Trustpilot: complaints open and settled, praise, history."""
    ids: dict[str, Review] = {}
    with sessions.begin() as session:
        acme, other = Business(name="Acme Bakery"), Business(name="Other Shop")
        tp = Source(business=acme, name="acme-trustpilot", kind="trustpilot",
                    url="https://www.trustpilot.com/review/acme.example")
        yelp = Source(business=acme, name="acme-yelp", kind="yelp", url="https://www.yelp.com/biz/acme")
        otp = Source(business=other, name="other-trustpilot", kind="trustpilot",
                     url="https://www.trustpilot.com/review/other.example")
        session.add_all([acme, other, tp, yelp, otp])

        def review(key: str, source: Source, body: str, **fields) -> None:
            fields.setdefault("sentiment_label", "neg")
            fields.setdefault("severity", "normal" if fields["sentiment_label"] in ("neg", "mixed") else None)
            fields.setdefault("first_seen_at", (fields.get("published_at") or NOW) + timedelta(hours=2))
            fields.setdefault("sentiment_lang", "en")
            fields.setdefault("language", "en")
            if fields["sentiment_label"] in ("neg", "mixed"):
                fields.setdefault("topics", encode_topics(TopicMatcher.from_config(CONFIG).topics(
                    f"{fields.get('title') or ''}. {body}", fields["sentiment_lang"])))
            ids[key] = Review(source=source, external_id=key, content_hash=key, body=body,
                              url=f"{source.url}/{key}", **fields)
            session.add(ids[key])

        review("late", tp, "The delivery came a week late and the courier was rude.", rating=1,
               published_at=at(16), author="Jane Late", title="Late parcel", severity="high")
        review("refund", tp, "I asked for a refund three times and nobody answered.", rating=2,
               published_at=at(20), author="Rob Refund")
        review("polish", yelp, "Kurier zgubił przesyłkę, a obsługa klienta nie odpowiada.", rating=1,
               published_at=at(23), author="Ola", sentiment_lang="pl", language="pl")
        review("mixed", yelp, "Five stars but the bread was stale and cold.", rating=5, sentiment_label="mixed",
               published_at=at(24), author="Mia Mixed")
        review("taken", tp, "Rude staff at the counter.", rating=1, published_at=at(18), author="Tom Taken",
               status="assigned", assignee="alice")
        review("done", tp, "Broken on arrival.", rating=1, published_at=at(10), status="resolved",
               status_changed_at=at(12))
        review("answered", yelp, "The delivery was late.", rating=2, published_at=at(17), status="replied",
               reply_body="Sorry!", reply_published_at=at(18), first_reply_at=at(18))
        review("history", tp, "An old complaint from a first crawl.", rating=1, published_at=datetime(2022, 1, 5, tzinfo=UTC),
               severity=None, baseline=True)
        review("praise", tp, "Lovely bread, fast delivery.", rating=5, sentiment_label="pos", published_at=at(21))
        review("elsewhere", otp, "Awful refund process.", rating=1, published_at=at(19), author="Xena")
    return {key: r.id for key, r in ids.items()}


@pytest.fixture
def seeded(sessions):
    return sessions, seed(sessions)


def ids_of(page) -> list[int]:
    return [row.id for row in page.rows]


def test_the_default_view_is_open_complaints_that_were_news_oldest_first(seeded):
    sessions, ids = seeded
    page = inbox(sessions, CONFIG, InboxQuery(), now=NOW)
    assert ids_of(page) == [ids[k] for k in ("late", "taken", "elsewhere", "refund", "polish", "mixed")]
    assert page.total == 6 and page.pages == 1 and page.page == 1
    first = page.rows[0]
    assert first.business == "Acme Bakery" and first.site == "Trustpilot" and first.kind == "trustpilot"
    assert first.stars == 1 and first.author == "Jane Late" and first.excerpt.startswith("Late parcel\nThe delivery")
    assert first.topics and "delivery" in first.topics
    assert first.waited == NOW - at(16) and first.overdue and first.deadline == timedelta(hours=48) - first.waited
    assert first.url == "https://www.trustpilot.com/review/acme.example/late"
    mixed = page.rows[-1]
    assert mixed.label == "mixed" and not mixed.overdue and mixed.deadline == timedelta(hours=48) - (NOW - at(24))


def test_each_filter_narrows_the_list(seeded):
    sessions, ids = seeded

    def found(**fields) -> set[int]:
        return set(ids_of(inbox(sessions, CONFIG, InboxQuery(**fields), now=NOW)))

    def named(*keys: str) -> set[int]:
        return {ids[k] for k in keys}

    assert found(business="Other Shop") == named("elsewhere")
    assert found(source="acme-yelp") == named("polish", "mixed")
    assert found(site="yelp") == named("polish", "mixed")
    assert found(stars=(2,)) == named("refund")
    assert found(stars=(5, 2)) == named("refund", "mixed")
    assert found(label="mixed") == named("mixed")
    assert found(label=ANY, status=()) - found(status=()) == named("praise")
    assert found(severity="high") == named("late")
    assert found(language="pl") == named("polish")
    assert found(topic="refunds") == named("refund", "elsewhere")
    assert ids["late"] not in found(topic="refunds")
    assert found(status=("resolved", "replied")) == named("done", "answered")
    assert found(status=()) == named("late", "taken", "elsewhere", "refund", "polish", "mixed", "done", "answered")
    assert found(assignee="alice") == named("taken")
    assert found(assignee="") == named("late", "elsewhere", "refund", "polish", "mixed")
    assert found(published_from=date(2026, 11, 20), published_to=date(2026, 11, 23)) == named("refund", "polish")
    assert found(seen_from=date(2026, 11, 24)) == named("mixed")
    assert found(include_baseline=True, status=()) - found(status=()) == named("history")


def test_counts_per_facet_are_over_the_whole_result(seeded):
    sessions, _ = seeded
    counts = inbox(sessions, CONFIG, InboxQuery(per_page=1), now=NOW).counts
    assert counts["business"] == {"Acme Bakery": 5, "Other Shop": 1}
    assert counts["site"] == {"trustpilot": 4, "yelp": 2}
    assert counts["stars"] == {"1": 4, "2": 1, "5": 1}
    assert counts["label"] == {"neg": 5, "mixed": 1}
    assert counts["status"] == {"new": 5, "assigned": 1}
    assert counts["assignee"] == {"": 5, "alice": 1}
    assert counts["language"] == {"en": 5, "pl": 1}
    assert counts["severity"] == {"normal": 5, "high": 1}
    assert counts["topic"]["delivery"] >= 2 and counts["topic"]["refunds"] == 2
    narrowed = inbox(sessions, CONFIG, InboxQuery(site="yelp"), now=NOW).counts
    assert narrowed["business"] == {"Acme Bakery": 2} and narrowed["site"] == {"yelp": 2}


def test_pages_split_the_list_and_a_page_past_the_end_shows_the_last(seeded):
    sessions, ids = seeded
    everything = ids_of(inbox(sessions, CONFIG, InboxQuery(), now=NOW))
    pages = [inbox(sessions, CONFIG, InboxQuery(per_page=4, page=n), now=NOW) for n in (1, 2, 9)]
    assert [p.pages for p in pages] == [2, 2, 2] and [p.total for p in pages] == [6, 6, 6]
    assert ids_of(pages[0]) + ids_of(pages[1]) == everything
    assert pages[2].page == 2 and ids_of(pages[2]) == ids_of(pages[1])
    newest = ids_of(inbox(sessions, CONFIG, InboxQuery(order="newest"), now=NOW))
    assert newest == everything[::-1]


def test_waited_order_puts_the_longest_wait_first_whatever_its_state(seeded):
    sessions, ids = seeded
    rows = inbox(sessions, CONFIG, InboxQuery(status=(), order="waited"), now=NOW).rows
    waits = [row.waited for row in rows]
    assert waits == sorted(waits, reverse=True)
    answered = next(row for row in rows if row.id == ids["answered"])
    assert answered.waited == timedelta(days=1) and answered.deadline is None and not answered.overdue


@pytest.mark.parametrize("words, expected", [
    ("refund", {"refund", "elsewhere"}),
    ("REFUND nobody", {"refund"}),
    ("courier", {"late"}),  # the title, the body and the author are searched
    ("Late parcel", {"late"}),
    ("xena", {"elsewhere"}),
    ("przesyłkę", {"polish"}),
    ("zeppelin", set()),
])
def test_search_finds_words_in_title_body_and_author(seeded, words, expected):
    sessions, ids = seeded
    assert set(ids_of(inbox(sessions, CONFIG, InboxQuery(text=words), now=NOW))) == {ids[k] for k in expected}


FINDS_REFUND = {'refund"', '"refund', "refund*", "^refund", "(refund", "refund)", "-refund", "+refund", "refund & | !",
                "refund " * 2000}


@pytest.mark.parametrize("hostile", [
    '"', "'", 'refund"', '"refund', "refund OR", "NOT refund", "AND", "refund*", "^refund", "body:refund",
    "refund NEAR(nobody)", "(refund", "refund)", "-refund", "+refund", "re\x00fund", "\x00", "🙂 refund", "%", "_",
    "\\", "a' OR 1=1 --", "refund & | !", ":*", "<->", "refund " * 2000, "x" * 10_000, "   ", "",
])
def test_hostile_search_input_never_errors(seeded, hostile):
    sessions, ids = seeded
    page = inbox(sessions, CONFIG, InboxQuery(text=hostile), now=NOW)
    assert page.total == len(page.rows) <= 6
    if hostile in FINDS_REFUND:  # the operators are read as the plain words they are
        assert ids["refund"] in ids_of(page)


def test_a_query_that_makes_no_sense_says_what_is_wrong(seeded):
    sessions, _ = seeded
    for query, message in ((InboxQuery(status=("handled",)), "unknown status 'handled'"),
                           (InboxQuery(order="random"), "unknown order"),
                           (InboxQuery(stars=(6,)), "stars are 1 to 5"),
                           (InboxQuery(published_from=date(2026, 11, 5), published_to=date(2026, 11, 1)), "after")):
        with pytest.raises(InboxError, match=message):
            inbox(sessions, CONFIG, query, now=NOW)


def test_a_resolved_review_leaves_the_default_view(seeded):
    sessions, ids = seeded
    set_status(sessions, ids["late"], "resolved", ALICE)
    assert ids["late"] not in ids_of(inbox(sessions, CONFIG, now=NOW))


def test_an_incident_shows_how_many_posts_it_has(seeded):
    sessions, ids = seeded
    with sessions.begin() as session:
        incident = Incident(business_id=session.get(Review, ids["late"]).source.business_id,
                            first_review_id=ids["late"], reason="same author")
        session.add(incident)
        session.flush()
        for key in ("late", "polish"):
            session.get(Review, ids[key]).incident_id = incident.id
    rows = {row.id: row for row in inbox(sessions, CONFIG, now=NOW).rows}
    assert rows[ids["late"]].incident_posts == 2 and rows[ids["refund"]].incident_posts == 1
    detail = review_detail(sessions, CONFIG, ids["late"], now=NOW)
    assert [(p.id, p.site, p.author) for p in detail.incident_posts] == [(ids["polish"], "Yelp", "Ola")]


def test_the_review_page_has_everything(seeded):
    sessions, ids = seeded
    review_id = ids["late"]
    with sessions.begin() as session:
        session.add(ReviewVersion(review_id=review_id, seen_at=at(16, 14), change="first", content_hash="a",
                                  body="The delivery came late."))
        session.add(ReviewVersion(review_id=review_id, seen_at=at(17), change="edited", content_hash="b",
                                  body="The delivery came a week late and the courier was rude.", rating=1))
        session.add(Delivery(kind="alert", dedupe_key=f"alert:{review_id}", review_id=review_id, destination="slack",
                             status="sent", created_at=at(16, 15), sent_at=at(16, 15)))
    assign(sessions, review_id, ALICE, to="alice")
    add_note(sessions, review_id, "Called her, refund on its way", ALICE)
    detail = review_detail(sessions, CONFIG, review_id, now=NOW)
    assert (detail.business, detail.source, detail.site) == ("Acme Bakery", "acme-trustpilot", "Trustpilot")
    assert detail.title == "Late parcel" and detail.text.startswith("The delivery") and detail.rating == 1
    assert detail.author == "Jane Late" and detail.language == "en" and "delivery" in detail.topics
    assert detail.topic_titles["delivery"] == "Delivery"
    assert detail.url == "https://www.trustpilot.com/review/acme.example/late"
    assert (detail.label, detail.severity, detail.status, detail.assignee) == ("neg", "high", "assigned", "alice")
    assert detail.work_version == 3 and detail.first_reply_at is None and detail.overdue
    assert [v["change"] for v in detail.history.versions] == ["first", "edited"]
    assert [(a.destination, a.kind, a.status) for a in detail.alerts] == [("slack", "alert", "sent")]
    assert detail.draft_reply and "Jane" in detail.draft_reply and not detail.draft_edited
    assert [(e.actor, e.action, e.after) for e in detail.events] == [
        ("alice", "assign", "alice"), ("alice", "status", "assigned"), ("alice", "note", "Called her, refund on its way")]
    assert [n.after for n in detail.notes] == ["Called her, refund on its way"]

    save_draft(sessions, review_id, "Dear Jane, we are sorry.", ALICE)
    set_status(sessions, review_id, "replied", ALICE)
    detail = review_detail(sessions, CONFIG, review_id, now=NOW + timedelta(hours=1))
    assert detail.draft_reply == "Dear Jane, we are sorry." and detail.draft_edited
    assert detail.first_reply_at is not None and detail.time_to_first_reply == detail.first_reply_at - at(16)
    assert detail.deadline is None and not detail.overdue


def test_the_draft_is_in_the_reviewers_language(seeded):
    sessions, ids = seeded
    detail = review_detail(sessions, CONFIG, ids["polish"], now=NOW)
    english = review_detail(sessions, CONFIG, ids["refund"], now=NOW)
    assert detail.language == "pl" and detail.draft_reply and detail.draft_reply != english.draft_reply


def test_an_unknown_review_is_no_such_review(seeded):
    sessions, _ = seeded
    with pytest.raises(NoSuchReview):
        review_detail(sessions, CONFIG, 999_999, now=NOW)


def test_topics_of_complaints_scored_before_they_were_stored_are_filled(seeded):
    sessions, ids = seeded
    with sessions.begin() as session:
        session.get(Review, ids["refund"]).topics = None
        session.get(Review, ids["praise"]).topics = None
    assert fill_topics(sessions, TopicMatcher.from_config(CONFIG)) == 1
    with sessions() as session:
        assert session.get(Review, ids["refund"]).topics == ",refunds,"
        assert session.get(Review, ids["praise"]).topics is None
    assert fill_topics(sessions, TopicMatcher.from_config(CONFIG)) == 0


def test_the_dashboard_has_the_digests_numbers(seeded):
    sessions, _ = seeded
    for week in (IsoWeek.parse("2026-W47"), IsoWeek.parse("2026-W48")):
        board = dashboard(sessions, CONFIG, "Acme Bakery", now=NOW, week=week)
        with sessions() as session:
            digest = build_digest(session, "Acme Bakery", week, topics=TopicMatcher.from_config(CONFIG), now=NOW)
        assert board.new_negatives == digest.negatives_total
        assert board.unanswered == digest.unanswered_total
        assert board.median_reply == digest.median_reply and board.replies == digest.replies
        assert board.topics == digest.topics and board.weeks == digest.weeks
    w47 = dashboard(sessions, CONFIG, "Acme Bakery", now=NOW, week=IsoWeek.parse("2026-W47"))
    # W47 (16-22 Nov) negatives: late (16), answered (17), taken (18), refund (20)
    assert w47.new_negatives == 4
    assert [(s.site, s.replies, s.median) for s in w47.reply_by_site] == [("www.yelp.com", 1, timedelta(days=1))]
    # answered within 48 h: "answered" (1 day); past the deadline unanswered: late, taken, refund
    assert (w47.answered_in_time, w47.answer_due) == (1, 4) and w47.answered_in_time_share == 0.25
    current = dashboard(sessions, CONFIG, "Acme Bakery", now=NOW)
    assert current.week == IsoWeek.parse("2026-W48") and current.new_negatives == 1  # polish (23 Nov)
    assert len(current.weeks) == 8
