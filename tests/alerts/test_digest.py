"""The weekly digest: numbers from a seeded database, the email via a real SMTP server, SMTP failures, Chromium at 600 px."""
from __future__ import annotations

import json
import os
import re
import smtplib
import subprocess
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest

from alerts.base import DeliveryError
from alerts.digest import (
    IsoWeek,
    TopicCount,
    build_digest,
    build_digest_email,
    chart_data_uri,
    render_chart,
    render_html,
    render_text,
)
from alerts.email import (
    DeliveryOutcomeUnknown,
    DigestSettings,
    classify_smtp_error,
    send_email,
)
from models.tables import Business, Review, Source
from monitor.config import parse_config
from monitor.topics import TopicMatcher, builtin_matcher
from tests.alerts.servers import PASSWORD, LocalSMTP, Mailbox, authenticator
from tests.cli import Result, run_cli

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday in 2026-W48
WEEK = IsoWeek.parse("2026-W47")  # Mon 16 Nov - Sun 22 Nov 2026
HOSTILE_TITLE = "<b>Awful</b>"
HOSTILE_BODY = "<script>alert(1)</script> Cold bread & rude staff."
CHROMIUM = Path("/usr/bin/chromium")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------------------
# Fixtures: a seeded database and a real SMTP server


@pytest.fixture
def seeded(sessions):
    seed(sessions)
    return sessions


def seed(sessions) -> None:
    """Reviews across 2026-W47 (the digest's week), W46 (last week), older weeks and W48 (after the week)."""
    with sessions.begin() as session:
        acme = Business(name="Acme Bakery")
        other = Business(name="Other Shop")
        tp = Source(business=acme, name="acme-trustpilot", kind="trustpilot", url="https://www.trustpilot.com/review/acme.example")
        gm = Source(business=acme, name="acme-google", kind="schema_org", url="https://maps.example.com/acme")
        elsewhere = Source(business=other, name="other-site", kind="schema_org", url="https://other.example/reviews")
        session.add_all([acme, other, tp, gm, elsewhere])

        def review(key: str, source: Source, **fields) -> None:
            fields.setdefault("published_at", None)
            fields.setdefault("first_seen_at", fields["published_at"] or NOW)
            fields.setdefault("url", f"https://www.trustpilot.com/reviews/{key}")
            fields.setdefault("body", f"review {key}")
            # The score stage sets a severity on every negative that was news (not first-crawl history).
            fields.setdefault("severity", "normal" if fields.get("sentiment_label") == "neg" else None)
            session.add(Review(source=source, external_id=key, content_hash=key, **fields))

        # this week: 6 reviews, ratings 1, 2, 5, 3, 1 (+ one unrated): average 2.4
        review("r1", tp, rating=1, sentiment_label="neg", published_at=at(17, 9), title=HOSTILE_TITLE, body=HOSTILE_BODY,
               author="Jane <i>D.</i>", severity="high")
        review("r2", tp, rating=2, sentiment_label="neg", published_at=at(18), reply_body="Sorry!", reply_published_at=at(19))
        review("r3", gm, rating=5, sentiment_label="pos", published_at=at(19), url="https://maps.example.com/acme/r3")
        review("r4", gm, rating=3, sentiment_label="neu", published_at=at(20), url="https://maps.example.com/acme/r4")
        review("r5", gm, rating=None, sentiment_label=None, published_at=None, first_seen_at=at(21), url="https://maps.example.com/acme/r5")
        review("r6", tp, rating=1, sentiment_label="neg", published_at=at(21), status="resolved", url="javascript:alert(2)")
        # last week: ratings 4, 2, 5: average 3.67; r8 is still open, r9 got its reply this week (after 5 days)
        review("r7", tp, rating=4, sentiment_label="pos", published_at=at(10))
        review("r8", tp, rating=2, sentiment_label="neg", published_at=at(11, 10), status="acknowledged")
        review("r9", gm, rating=5, sentiment_label="pos", published_at=at(12), reply_body="Thanks", reply_published_at=at(17),
               url="https://maps.example.com/acme/r9")
        # older, removed from the site: not waiting for a reply any more
        review("r10", tp, rating=1, sentiment_label="neg", published_at=datetime(2026, 10, 28, tzinfo=UTC), removed_at=at(20))
        # after the week: not in this digest
        review("r11", tp, rating=1, sentiment_label="neg", published_at=at(24))
        # another business: never counted for Acme
        review("x1", elsewhere, rating=1, sentiment_label="neg", published_at=at(18), url="https://other.example/x1")


@pytest.fixture
def polyglot(sessions):
    seed_topics(sessions)
    return sessions


def seed_topics(sessions) -> None:
    """A business reviewed in five languages: negatives with known complaint topics in W47 and W46."""
    with sessions.begin() as session:
        bistro = Business(name="Polyglot Bistro")
        source = Source(business=bistro, name="bistro-google", kind="schema_org", url="https://maps.example.com/bistro")
        rival = Business(name="Rival")
        elsewhere = Source(business=rival, name="rival-site", kind="schema_org", url="https://rival.example/")
        session.add_all([bistro, source, rival, elsewhere])

        def review(key: str, body: str, label: str = "neg", *, lang: str | None = "en", day: int = 18,
                   where: Source = source, **fields) -> None:
            fields.setdefault("sentiment_lang", lang)
            fields.setdefault("severity", "normal" if label == "neg" else None)
            session.add(Review(source=where, external_id=key, content_hash=key, url=f"https://maps.example.com/bistro/{key}",
                               body=body, sentiment_label=label, published_at=at(day), **fields))

        # this week (W47), 7 negatives: delivery 5, price 3, service 2, food 1, quality 1, waiting 1
        review("n1", "Our delivery came an hour late and the courier was rude and dismissive.", title="Late again")
        review("n2", "Kurier zgubił przesyłkę, a obsługa klienta nie odpowiada.", lang="pl")
        review("n3", "Coletul a ajuns deteriorat și prețul e prea mare.", lang=None, language="ro")  # no scorer language
        review("n4", "Πανάκριβο και το δέμα άργησε μία εβδομάδα.", lang="el", day=19)
        review("n5", "Die Preise sind gestiegen, das Essen war kalt.", title="Zu teuer", lang="de", day=20)
        review("n6", "Delivery, delivery, delivery! Still no delivery.", status="resolved", day=21)  # counts once
        review("n7", "Just not for us.", day=22)
        # this week but not negative, or not this business, or after the week: never counted
        review("p1", "Fast delivery and a fair price.", label="pos")
        review("u1", "Delivery was late.", label=None)
        review("x1", "The courier lost my parcel.", where=elsewhere)
        review("a1", "Way overpriced.", day=24)
        # last week (W46): delivery 2, price 1, food 1, waiting 1
        review("l1", "The delivery was slow and overpriced.", day=10)
        review("l2", "Zimne jedzenie, bez smaku.", lang="pl", day=11)
        review("l3", "Livraison en retard.", lang="fr", day=12)
        # two weeks ago: not last week
        review("o1", "Rude staff and a dirty floor.", day=3)


def settings_for(controller: LocalSMTP, **smtp) -> DigestSettings:
    return DigestSettings.model_validate({
        "from": "repwatch <digest@acme.example>",
        "to": ["owner@acme.example", "Manager <manager@acme.example>"],
        "subject": "Reviews of {business}, week {week}",
        "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5, **smtp},
    })


# --------------------------------------------------------------------------------------------------------------
# Numbers


def test_weeks_are_iso_weeks_in_utc():
    assert (WEEK.start, WEEK.end) == (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
    assert IsoWeek.last_complete(NOW) == WEEK
    assert IsoWeek.last_complete(datetime(2027, 1, 4, 0, 0, tzinfo=UTC)).label == "2026-W53"
    assert IsoWeek.parse("2027-W01").shifted(-1).label == "2026-W53"
    with pytest.raises(ValueError, match="no week 53"):
        IsoWeek.parse("2025-W53")
    with pytest.raises(ValueError, match="ISO week"):
        IsoWeek.parse("2026-11-16")


def test_digest_numbers_come_from_the_database(seeded):
    with seeded() as session:
        digest = build_digest(session, "Acme Bakery", WEEK, now=NOW, topics=builtin_matcher())
    assert digest.new_reviews == 6
    assert [(s.source, s.site, s.count) for s in digest.by_source] == [
        ("acme-google", "maps.example.com", 3), ("acme-trustpilot", "www.trustpilot.com", 3)]
    assert digest.this_week.average_rating == pytest.approx(2.4)
    assert digest.last_week.average_rating == pytest.approx(11 / 3)
    assert digest.sentiment == {"neg": 3, "mixed": 0, "neu": 1, "pos": 1, "unscored": 1}
    assert [(r.excerpt[:12], r.status, r.replied) for r in digest.negatives] == [
        ("<b>Awful</b>", "new", False), ("review r2", "new", True), ("review r6", "resolved", False)]
    assert digest.negatives[2].url is None  # javascript: never becomes a link
    assert [r.excerpt[:8] for r in digest.unanswered] == ["review r", "<b>Awful"]  # oldest first
    assert [r.age for r in digest.unanswered] == [NOW - at(11, 10), NOW - at(17, 9)]
    assert digest.unanswered_total == 2
    assert digest.median_reply == timedelta(days=3)  # replies this week after 1 day and 5 days
    assert digest.replies == 2
    assert [w.week.label for w in digest.weeks] == [f"2026-W{n}" for n in range(40, 48)]
    assert [w.total for w in digest.weeks] == [0, 0, 0, 0, 1, 0, 3, 6]


def test_an_unknown_or_empty_business_gets_an_empty_digest(seeded):
    with seeded() as session:
        digest = build_digest(session, "Never Crawled", WEEK, now=NOW, topics=builtin_matcher())
    assert digest.new_reviews == 0 and digest.this_week.average_rating is None and digest.median_reply is None
    html = render_html(digest, chart_data_uri(render_chart(digest)))
    assert "None this week." in html and "Nothing waiting for a reply." in html


def test_html_stays_under_the_gmail_clipping_size_with_many_long_hostile_reviews(sessions):
    with sessions.begin() as session:
        business = Business(name="Busy")
        source = Source(business=business, name="busy", kind="schema_org", url="https://busy.example/")
        session.add_all([business, source])
        for i in range(200):
            session.add(Review(source=source, external_id=str(i), content_hash=str(i), url=f"https://busy.example/{i}",
                               body="<&>" * 400, rating=1, sentiment_label="neg", published_at=at(17)))
    with sessions() as session:
        digest = build_digest(session, "Busy", WEEK, now=NOW, topics=builtin_matcher())
    html = render_html(digest, "cid:chart@x")
    assert len(html.encode()) <= 100_000
    assert "…and" in html and "&lt;&amp;&gt;" in html and "<&>" not in html


def test_top_complaint_topics_are_counted_from_the_weeks_negative_reviews(polyglot):
    with polyglot() as session:
        digest = build_digest(session, "Polyglot Bistro", WEEK, now=NOW, topics=builtin_matcher())
    assert digest.negatives_total == 7
    assert digest.topics == [
        TopicCount("delivery", "Delivery", 5, 5 / 7, 2),  # en, pl, ro (the site's language), el, and once for n6
        TopicCount("price", "Price", 3, 3 / 7, 1),
        TopicCount("service", "Customer service", 2, 2 / 7, 0),
        TopicCount("food", "Food & drink", 1, 1 / 7, 1),  # ties at 1 by name: food, quality; waiting is sixth
        TopicCount("quality", "Product quality", 1, 1 / 7, 0),
    ]
    assert [t.change for t in digest.topics] == [3, 2, 2, 0, 1]


def test_topic_counts_agree_with_the_reviews_in_the_database(polyglot):
    """Recounted independently: every negative review of the week, its text and language, through the matcher."""
    from sqlalchemy import func, select

    matcher = TopicMatcher.from_config(None)
    when = func.coalesce(Review.published_at, Review.first_seen_at)
    with polyglot() as session:
        digest = build_digest(session, "Polyglot Bistro", WEEK, now=NOW, topics=builtin_matcher())
        rows = session.execute(
            select(Review.title, Review.body, Review.sentiment_lang, Review.language).join(Source).join(Business)
            .where(Business.name == "Polyglot Bistro", Review.sentiment_label == "neg", when >= WEEK.start, when < WEEK.end)
        ).all()
    expected: dict[str, int] = {}
    for title, body, sentiment_lang, language in rows:
        for topic in set(matcher.topics(f"{title or ''}\n{body}", sentiment_lang or language)):
            expected[topic] = expected.get(topic, 0) + 1
    assert len(rows) == digest.negatives_total
    assert {t.topic: t.count for t in digest.topics} == dict(sorted(expected.items(), key=lambda i: (-i[1], i[0]))[:5])


def test_a_resolved_review_shows_as_resolved_and_is_not_waiting_for_a_reply(polyglot):
    with polyglot() as session:
        digest = build_digest(session, "Polyglot Bistro", WEEK, now=NOW, topics=builtin_matcher())
    [handled] = [r for r in digest.negatives if r.excerpt.startswith("Delivery, delivery")]
    assert handled.status == "resolved"
    assert handled.review_id not in {r.review_id for r in digest.unanswered}
    assert digest.unanswered_total == 10  # W47's 7 negatives but the handled one, W46's 3, and the older one
    text = render_text(digest)
    assert "4 days old, resolved\n  Delivery, delivery" in text


def test_configured_topics_are_used_and_their_names_escaped(polyglot):
    config = parse_config("""
topics:
  "<script>alert(1)</script> & co":
    en: ["courier*", "dismissive"]
    pl: ["kurier*"]
""", env={})
    with polyglot() as session:
        digest = build_digest(session, "Polyglot Bistro", WEEK, now=NOW, topics=TopicMatcher.from_config(config))
    assert [(t.title, t.count) for t in digest.topics][:3] == [
        ("Delivery", 5), ("Price", 3), ("<script>alert(1)</script> & co", 2)]
    html = render_html(digest, "cid:chart@x")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>alert(1)</script> & co (last week 0, +2)" in render_text(digest)


def test_no_negative_reviews_means_no_topics_section(sessions):
    with sessions.begin() as session:
        business = Business(name="Happy Place")
        source = Source(business=business, name="happy", kind="schema_org", url="https://happy.example/")
        session.add_all([business, source, Review(
            source=source, external_id="h1", content_hash="h1", url="https://happy.example/h1",
            body="Quick delivery, fair price.", sentiment_label="pos", published_at=at(18))])
    with sessions() as session:
        digest = build_digest(session, "Happy Place", WEEK, now=NOW, topics=builtin_matcher())
    assert digest.negatives_total == 0 and digest.topics == []
    html, text = render_html(digest, "cid:chart@x"), render_text(digest)
    assert "complaint topics" not in html.lower() and "COMPLAINT TOPICS" not in text


def test_a_mixed_review_is_counted_as_mixed_not_unscored(sessions):
    """A 5★ review whose text says "never again" is its own bucket: the owner sees it, the week stays positive."""
    with sessions.begin() as session:
        business = Business(name="Mixed Bag")
        source = Source(business=business, name="mixed", kind="schema_org", url="https://mixed.example/")
        session.add_all([business, source] + [
            Review(source=source, external_id=key, content_hash=key, url=f"https://mixed.example/{key}", body=body,
                   rating=rating, sentiment_label=label, published_at=at(18))
            for key, rating, label, body in (("m1", 5, "mixed", "Five stars. Never again, the courier lost it."),
                                             ("m2", 5, "pos", "Lovely."), ("m3", 1, "neg", "Awful."))])
    with sessions() as session:
        digest = build_digest(session, "Mixed Bag", WEEK, now=NOW, topics=builtin_matcher())
    assert digest.sentiment == {"neg": 1, "mixed": 1, "neu": 0, "pos": 1, "unscored": 0}
    assert digest.weeks[-1].counts["mixed"] == 1
    assert "negative 1   mixed 1   neutral 0   positive 1   unscored 0" in render_text(digest)
    assert 'id="sentiment-mixed">1<' in render_html(digest, "cid:chart@x")


def test_both_parts_show_the_top_complaint_topics(polyglot):
    with polyglot() as session:
        digest = build_digest(session, "Polyglot Bistro", WEEK, now=NOW, topics=builtin_matcher())
    html, text = render_html(digest, "cid:chart@x"), render_text(digest)

    def row(topic: str) -> list[str]:
        """A topic's table row as a reader sees it: title, reviews, share, change, (was last week)."""
        at_count = html.index(f'id="topic-{topic}"')
        start, end = html.rindex("<tr>\n<td", 0, at_count), html.index("</tr>", at_count)
        parts = (unescape(part).strip() for part in re.sub(r"<[^>]+>", "|", html[start:end]).split("|"))
        return [part for part in parts if part and part != "\xa0"]

    assert row("delivery") == ["Delivery", "5", "71%", "+3", "(was 2)"]
    assert row("price") == ["Price", "3", "43%", "+2", "(was 1)"]
    assert row("food") == ["Food & drink", "1", "14%", "same", "(was 1)"]
    assert "waiting" not in re.findall(r'id="topic-(\w+)"', html)
    section = text.split("TOP COMPLAINT TOPICS")[1].split("NEGATIVE REVIEWS THIS WEEK")[0]
    assert section.splitlines() == [
        " (in this week's 7 negative reviews; a review can mention several)",
        "    5   71%  Delivery (last week 2, +3)",
        "    3   43%  Price (last week 1, +2)",
        "    2   29%  Customer service (last week 0, +2)",
        "    1   14%  Food & drink (last week 1, same)",
        "    1   14%  Product quality (last week 0, +1)",
        "",
    ]


# --------------------------------------------------------------------------------------------------------------
# The email, through a real SMTP server


def received_digest(seeded, smtp_server) -> tuple[EmailMessage, list[str]]:
    mailbox = Mailbox()
    controller = smtp_server(mailbox)
    with seeded() as session:
        digest = build_digest(session, "Acme Bakery", WEEK, now=NOW, topics=builtin_matcher())
    report = send_email(build_digest_email(digest, settings_for(controller)), settings_for(controller).smtp)
    assert report.accepted == ["owner@acme.example", "manager@acme.example"] and not report.refused
    [(recipients, raw)] = mailbox.received
    return message_from_bytes(raw, policy=policy.default), recipients


def test_the_digest_arrives_as_text_and_html_with_the_chart_by_content_id(seeded, smtp_server):
    message, recipients = received_digest(seeded, smtp_server)
    assert recipients == ["owner@acme.example", "manager@acme.example"]
    assert message["Subject"] == "Reviews of Acme Bakery, week 2026-W47"
    assert message["From"] == "repwatch <digest@acme.example>"
    assert message.get_content_type() == "multipart/alternative"
    text_part, related = message.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    png = image.get_content()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < 150_000
    html = html_part.get_content()
    [cid] = re.findall(r'<img src="cid:([^"]+)"', html)
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content_disposition() == "inline"


def test_both_parts_show_the_numbers_and_links_and_escape_review_text(seeded, smtp_server):
    message, _ = received_digest(seeded, smtp_server)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()

    def html_number(element_id: str) -> str:
        return re.search(rf'id="{element_id}">([^<]*)<', html)[1]

    assert html_number("new-reviews") == "6"
    assert html_number("average-rating") == "2.40"
    assert html_number("negatives") == "3"
    assert html_number("unanswered") == "2"
    assert html_number("median-reply") == "3 days"
    assert [html_number(f"sentiment-{label}") for label in ("neg", "mixed", "neu", "pos", "unscored")] == ["3", "0", "1", "1", "1"]
    assert "last week 3.67" in html and "-1.27" in html
    assert html_number("topic-service") == "1"  # "rude staff" in r1: the week's only complaint topic
    for line in ("New reviews: 6", "Average rating: 2.40 (last week 3.67, -1.27)", "Negative: 3    Unanswered: 2",
                 "    1   33%  Customer service (last week 0, +1)",
                 "Median time to reply: 3 days (2 replies)", "negative 3   mixed 0   neutral 1   positive 1   unscored 1",
                 "3  acme-google (maps.example.com)", "3  acme-trustpilot (www.trustpilot.com)"):
        assert line in text

    # links: r1 (this week and unanswered), r2, r8; never the javascript: URL
    for key in ("r1", "r2", "r8"):
        assert f'href="https://www.trustpilot.com/reviews/{key}"' in html
        assert f"https://www.trustpilot.com/reviews/{key}" in text
    assert "javascript:" not in html and "javascript:" not in text
    assert "Other Shop" not in html and "other.example" not in html and "r11" not in text

    # untrusted text arrives escaped in HTML and verbatim (it is inert there) in plain text
    assert "<script>" not in html and "<b>Awful" not in html and "<i>D." not in html
    assert "&lt;b&gt;Awful&lt;/b&gt;: &lt;script&gt;alert(1)&lt;/script&gt; Cold bread &amp; rude staff." in html
    assert "Jane &lt;i&gt;D.&lt;/i&gt;" in html
    assert f"{HOSTILE_TITLE}: {HOSTILE_BODY}" in text
    # the unanswered list is oldest first, with ages
    unanswered = text.split("STILL UNANSWERED (2)")[1]
    assert unanswered.index("review r8") < unanswered.index("Awful")
    assert "14 days old, acknowledged" in unanswered and "8 days old, new" in unanswered
    assert not re.search(r"<(style|link|script)\b|src=\"https?:", html)  # no <style> for Gmail to strip, no fetches


# --------------------------------------------------------------------------------------------------------------
# SMTP failures: the code decides, not the exception class


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (smtplib.SMTPDataError(451, b"4.3.0 try again later"), True),
        (smtplib.SMTPDataError(550, b"5.7.1 rejected"), False),
        (smtplib.SMTPSenderRefused(421, b"4.7.0 too busy", "a@b"), True),
        (smtplib.SMTPSenderRefused(553, b"5.1.8 bad sender", "a@b"), False),
        (smtplib.SMTPAuthenticationError(454, b"4.7.0 temporary auth failure"), True),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (450, b"busy"), "c@d": (451, b"later")}), True),
        (smtplib.SMTPRecipientsRefused({"a@b": (450, b"busy"), "c@d": (550, b"no such user")}), False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
    ],
)
def test_smtp_errors_are_classified_by_their_code(exc, retryable):
    error = classify_smtp_error(exc, "SMTP mail.example:587")
    assert error.retryable is retryable, error.message
    assert error.message.startswith("SMTP mail.example:587: ")


def send_sample(controller: LocalSMTP, **smtp):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "digest@acme.example", "owner@acme.example", "test"
    message.set_content("hello")
    return send_email(message, settings_for(controller, **smtp).smtp)


def test_a_451_from_a_real_server_is_retryable(smtp_server):
    with pytest.raises(DeliveryError) as caught:
        send_sample(smtp_server(Mailbox(data_reply="451 4.3.0 Mailbox temporarily unavailable")))
    assert caught.value.retryable
    assert "451 4.3.0 Mailbox temporarily unavailable" in str(caught.value)


def test_a_550_from_a_real_server_is_permanent(smtp_server):
    with pytest.raises(DeliveryError) as caught:
        send_sample(smtp_server(Mailbox(rcpt_reply="550 5.1.1 No such user")))
    assert not caught.value.retryable
    assert "owner@acme.example: 550 5.1.1 No such user" in str(caught.value)


def test_a_wrong_password_is_permanent_and_never_shown(smtp_server):
    controller = smtp_server(Mailbox(), authenticator=authenticator, auth_require_tls=False)
    assert send_sample(controller, username="digest", password=PASSWORD).accepted == ["owner@acme.example"]
    with pytest.raises(DeliveryError) as caught:
        send_sample(controller, username="digest", password="wrong-pass-77e2")
    assert not caught.value.retryable
    assert "535" in str(caught.value) and "wrong-pass-77e2" not in str(caught.value) and "***" in str(caught.value)
    assert "wrong-pass-77e2" not in repr(caught.value)


def test_a_timeout_after_the_message_was_handed_over_is_never_retried(smtp_server):
    """DESIGN §7: the server may deliver it anyway, so a retry could send the digest twice."""
    mailbox = Mailbox(hang=True)
    with pytest.raises(DeliveryOutcomeUnknown) as caught:
        send_sample(smtp_server(mailbox), timeout=0.5)
    assert not caught.value.retryable and "may have been delivered" in str(caught.value)
    assert len(mailbox.received) == 1


def test_nobody_listening_is_retryable():
    controller = LocalSMTP(Mailbox(), hostname="127.0.0.1", port=0, ready_timeout=10)
    controller.start()
    controller.stop()  # the port was ours a moment ago and now nothing listens on it
    with pytest.raises(DeliveryError) as caught:
        send_sample(controller)
    assert caught.value.retryable and "connection refused" in str(caught.value)


# --------------------------------------------------------------------------------------------------------------
# The HTML in a real browser at 600 px


PROBE = """<script>
window.addEventListener("load", function () {
  var probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    images: Array.prototype.map.call(document.images, function (i) { return [i.complete, i.naturalWidth, i.width]; })
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=600,2000", "--hide-scrollbars", *extra, url],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_html_fits_600px_in_chromium_and_the_chart_loads(seeded, tmp_path):
    with seeded() as session:
        digest = build_digest(session, "Acme Bakery", WEEK, now=NOW, topics=builtin_matcher())
    html = render_html(digest, chart_data_uri(render_chart(digest)))
    page = tmp_path / "digest.html"
    page.write_text(html, encoding="utf-8")
    probed = tmp_path / "probe.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")

    result = chromium(tmp_path, probed.as_uri(), "--virtual-time-budget=2000", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert found, result.stderr[-2000:]
    probe = json.loads(found[1])
    assert probe["clientWidth"] <= 600
    assert probe["scrollWidth"] <= probe["clientWidth"], probe  # no horizontal scrolling at 600 px
    assert probe["images"] and all(complete and natural >= 560 for complete, natural, _ in probe["images"]), probe

    screenshot = tmp_path / "d.png"
    result = chromium(tmp_path, page.as_uri(), f"--screenshot={screenshot}")
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, result.stderr[-2000:]
    print(f"screenshot: {screenshot}")


# --------------------------------------------------------------------------------------------------------------
# The command


def config_file(tmp_path: Path, smtp_port: int | None = None) -> Path:
    from models.db import connect, migrate, session_factory

    database = f"sqlite:///{tmp_path / 'repwatch.db'}"
    engine = connect(database)
    migrate(engine)
    seed(session_factory(engine))
    engine.dispose()
    digest = f"""
digest:
  from: repwatch <digest@acme.example>
  to: [owner@acme.example, "Manager <manager@acme.example>"]
  smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout: 5}}
""" if smtp_port else ""
    path = tmp_path / "config.yaml"
    path.write_text(f"""
database: {database}
businesses:
  - name: Acme Bakery
    sources:
      - name: acme-trustpilot
        kind: trustpilot
        url: https://www.trustpilot.com/review/acme.example
{digest}""", encoding="utf-8")
    return path


def repwatch(*args: str) -> Result:
    return run_cli(*args, cwd=Path(__file__).resolve().parents[2])

def test_digest_preview_writes_html_with_the_chart_inline(tmp_path):
    config = config_file(tmp_path)
    target = tmp_path / "preview.html"
    result = repwatch("digest", "-c", str(config), "--week", "2026-W47", "--preview", str(target))
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(target)
    html = target.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in html and 'id="new-reviews">6<' in html


def test_digest_send_says_to_whom(tmp_path, smtp_server):
    mailbox = Mailbox()
    config = config_file(tmp_path, smtp_server(mailbox).port)
    result = repwatch("digest", "-c", str(config), "--week", "2026-W47", "--send")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "Acme Bakery: sent the 2026-W47 digest to owner@acme.example, manager@acme.example"
    [(_, raw)] = mailbox.received
    assert b"Subject: Reviews of Acme Bakery, week 2026-W47" in raw


def test_digest_send_failure_is_one_line_and_exit_1(tmp_path, smtp_server):
    config = config_file(tmp_path, smtp_server(Mailbox(data_reply="554 5.7.1 spam")).port)
    result = repwatch("digest", "-c", str(config), "--week", "2026-W47", "--send")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        f"repwatch: digest for Acme Bakery not sent: SMTP 127.0.0.1:{config.read_text().split('port: ')[1].split(',')[0]}: 554 5.7.1 spam"]


@pytest.mark.parametrize(("args", "message"), [
    (("--week", "2026-47"), "repwatch: --week: expected an ISO week like 2026-W47, got '2026-47'"),
    (("--business", "Acme Bakry"), "repwatch: no business named 'Acme Bakry' (did you mean 'Acme Bakery'?)"),
    (("--send",), "has no digest: section"),
])
def test_digest_usage_errors_are_one_line(tmp_path, args, message):
    result = repwatch("digest", "-c", str(config_file(tmp_path)), *args)
    assert result.code == 1
    [line] = result.stderr.strip().splitlines()
    assert message in line


def test_the_commented_digest_example_in_config_yaml_is_valid():
    from monitor.config import parse_config

    repo = Path(__file__).resolve().parents[2]
    for name in ("config.yaml", "monitor/templates/config.yaml"):
        commented = re.search(r"^# digest:\n((?:#.*\n)+)", (repo / name).read_text(), flags=re.MULTILINE)
        assert commented, name
        block = "digest:\n" + "".join(line[2:] + "\n" for line in commented[1].splitlines())
        assert parse_config(block, env={"SMTP_PASSWORD": "x"}).digest.smtp.effective_port() == 587
