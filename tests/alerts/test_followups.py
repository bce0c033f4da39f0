"""What follows an alert, through the real slack-sdk to a local Slack-shaped server: routing, flood summaries with
threads, updates in place, reply-deadline reminders, spike alerts, `handle`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from demo.slack_receiver import SlackReceiver
from models.store import store_reviews
from models.tables import Business, Delivery, Review, Source
from monitor.service.alerting import deliver
from monitor.config import parse_config
from monitor.service.followups import queue_followups
from monitor.service.work import Actor, set_status, snooze
from monitor.service.scoring import score_pending, warm_scores
from monitor.sentiment import Scorer
from spiders.items import Reply
from spiders.items import ReviewItem

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


def make_config(slack: SlackReceiver, extra: str = "", webhook: bool = False):
    target = (f'webhook_url: "{slack.webhook_url()}"' if webhook
              else f'token: xoxb-test-bot-token, channel: "#reviews", api_url: "{slack.api_url}"')
    return parse_config(f"""
notifiers:
  slack: {{kind: slack, {target}, min_interval: 0}}
alerting:
  flood_threshold: 3
  reply_deadline: 48h
{extra}
businesses:
  - name: Acme
    notify: [slack]
    sources:
      - {{name: acme-tp, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}}
      - {{name: acme-web, kind: schema_org, url: "https://acme.example/reviews"}}
""", env={})


def item(n: int, *, rating: float | None = 1, body: str | None = None, reply: str | None = None,
         published: datetime = NOW) -> ReviewItem:
    return ReviewItem(
        source="acme-tp", external_id=f"r{n}", url=f"https://www.trustpilot.com/reviews/r{n}",
        author=f"Customer {n}", rating=rating, title=None,
        body=body or f"Cold bread and rude staff on visit {n}. Never again.", published_at=published,
        language=None, reply=Reply(body=reply, published_at=published) if reply else None,
    )


def add_source(sessions, name: str = "acme-tp", *, history_days: int = 3) -> int:
    """A source crawled since `history_days` ago (spike alerts need 8 days of history)."""
    with sessions.begin() as session:
        business = session.scalar(select(Business).where(Business.name == "Acme")) or Business(name="Acme")
        kind, url = (("trustpilot", "https://www.trustpilot.com/review/acme.example") if name == "acme-tp"
                     else ("schema_org", "https://acme.example/reviews"))
        source = Source(name=name, kind=kind, url=url, business=business, state="ok",
                        baseline_at=NOW - timedelta(days=history_days))
        session.add(source)
        session.flush()
        return source.id


def crawl(sessions, source_id: int, items: list[ReviewItem], *, at: datetime = NOW) -> None:
    with sessions.begin() as session:
        store_reviews(session, source_id, items, now=at)


def run(sessions, config, scorer, *, at: datetime = NOW):
    score_pending(sessions, config, scorer, now=at)
    queue_followups(sessions, config, now=at)
    return deliver(sessions, config, now=lambda: at, sleep=lambda s: None)


def outbox(sessions) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [tuple(r) for r in session.execute(
            select(Delivery.kind, Delivery.dedupe_key, Delivery.status).order_by(Delivery.id))]


def texts(message) -> str:
    """Everything a person reads in a message."""
    parts = [message["text"] or ""]
    for block in message["blocks"] or []:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                parts.append(block[key]["text"])
        for element in block.get("fields", []) + block.get("elements", []):
            if isinstance(element, dict) and isinstance(element.get("text"), (str, dict)):
                parts.append(element["text"] if isinstance(element["text"], str) else element["text"]["text"])
    return "\n".join(parts)


# --- routing -------------------------------------------------------------------------------------------------


def test_routes_send_critical_reviews_to_their_channel_with_a_ping_and_keep_normal_ones_for_the_digest(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack, """
  routes:
    - match: {severity: critical}
      channel: "#reviews-urgent"
      mention: "<!here>"
    - match: {source: acme-tp, severity: [high, normal]}
      cadence: digest
""")
        source_id = add_source(sessions)
        crawl(sessions, source_id, [
            item(1, rating=2, body="Slow and cold. Not great."),
            item(2, rating=1, body="This company is a scam, I am calling my lawyer."),
            item(3, rating=1, body="To jest oszustwo, idę do sądu!"),
        ])
        report = run(sessions, config, scorer)
        assert report.sent == 2
        channels = {m["channel"] for m in slack.messages}
        assert len(channels) == 1 and channels != {"#reviews"}  # the route's channel, by id
        assert all(m["text"].startswith("<!here>") for m in slack.messages)
        everything = "\n".join(texts(m) for m in slack.messages)
        assert "mentions “scam”" in everything and "“oszust”" in everything
        with sessions() as session:
            severities = dict(session.execute(select(Review.external_id, Review.severity)).all())
        assert severities == {"r1": "normal", "r2": "critical", "r3": "critical"}
        assert [k for k, _, _ in outbox(sessions)] == ["alert", "alert"]  # r1 waits for the digest only


def test_a_1_star_review_with_furious_text_is_critical_and_one_with_plain_text_is_high(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        source_id = add_source(sessions)
        crawl(sessions, source_id, [
            item(1, body="Absolutely horrible. The worst service I have ever had: rude, dishonest and disgusting "
                         "staff. Avoid this place at all costs!"),
            item(2, body="Ordered on Monday, it arrived on Thursday."),
        ])
        run(sessions, config, scorer)
        with sessions() as session:
            found = {r.external_id: (r.severity, r.sentiment_why) for r in session.scalars(select(Review))}
        assert found["r1"][0] == "critical" and found["r1"][1].startswith("1★ with strongly negative text; ")
        assert found["r2"] == ("high", "1★ rating")
        assert "(critical)" in texts(slack.messages[0]) and "strongly negative text" in texts(slack.messages[0])


def test_reading_a_crawls_reviews_before_the_outbox_lock_leaves_scoring_nothing_to_compute(sessions):
    """The crawl reads its own sources' new reviews through the model before it waits for the outbox lock, so
    crawls on other cores and machines do the slow part side by side; scoring under the lock then finds it all."""
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        scorer = Scorer()  # an empty embedding cache of its own
        source_id = add_source(sessions)
        crawl(sessions, source_id, [
            item(1, body="Terrible. They lost my order and hung up on me."),
            item(2, rating=None, body="Zamówienie nie dotarło, a obsługa nie odpowiada od tygodnia."),
            item(3, rating=5, body="Lovely staff, but the refund never came and nobody answers."),
            item(4, rating=None, body="Wonderful bakery, the best croissants in town."),
        ])
        assert warm_scores(sessions, scorer, ["acme-tp"]) == 4
        with sessions() as session:
            assert session.scalar(select(func.count()).where(Review.scored_at.is_not(None))) == 0  # writes nothing
        computed = scorer.model.cache.misses
        score_pending(sessions, config, scorer, now=NOW)
        assert scorer.model.cache.misses == computed  # every text and sentence came from the cache
        with sessions() as session:
            labels = dict(session.execute(select(Review.external_id, Review.sentiment_label)).all())
            severity = session.scalar(select(Review.severity).where(Review.external_id == "r1"))
        assert labels == {"r1": "neg", "r2": "neg", "r3": "mixed", "r4": "pos"}
        assert severity == "critical"  # its text was read for the critical check, from the cache too
        assert warm_scores(sessions, scorer, ["acme-tp"]) == 0  # nothing unscored is left


def test_a_crawl_scores_its_own_sources_and_leaves_the_others_to_theirs(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        crawl(sessions, add_source(sessions), [item(1)])
        crawl(sessions, add_source(sessions, "acme-web"), [item(2)])
        assert score_pending(sessions, config, scorer, now=NOW, source_names=["acme-web"]) == (1, 1)
        with sessions() as session:
            scored = dict(session.execute(select(Review.external_id, Review.scored_at.is_not(None))).all())
        assert scored == {"r1": False, "r2": True}  # r1 waits for its own source's crawl, or `repwatch deliver`
        assert score_pending(sessions, config, scorer, now=NOW) == (1, 1)


def test_the_draft_reply_is_in_the_reviewers_language_and_a_topic_template_wins(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack, """
  drafts:
    en:
      default: "Sorry {author}, {business} will call you."
""")
        source_id = add_source(sessions)
        crawl(sessions, source_id, [
            item(1, body="Terrible service, nobody answered the phone for a week."),
            item(2, body="Obsługa fatalna, nikt nie odbiera telefonu od tygodnia. Nie polecam."),
        ])
        run(sessions, config, scorer)
        by_review = {m["blocks"][-1]["elements"][-1]["text"].rsplit("#", 1)[-1]: texts(m) for m in slack.messages}
        assert len(by_review) == 2
        english, polish = (by_review[k] for k in sorted(by_review))
        assert "Sorry Customer 1, Acme will call you." in english
        assert "Dzień dobry Customer 2" in polish and "Draft reply, not posted" in polish


# --- flood control -------------------------------------------------------------------------------------------


def test_a_flood_becomes_one_summary_with_every_alert_in_its_thread(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        crawl(sessions, add_source(sessions), [item(n) for n in range(5)])
        report = run(sessions, config, scorer)
        assert report.sent == 6 and report.summaries == 1
        summary, *replies = slack.messages
        assert summary["thread_ts"] is None and "5 negative reviews" in summary["text"]
        assert [m["thread_ts"] for m in replies] == [summary["ts"]] * 5
        assert "Each review follows in this thread" in texts(summary)
        # Nothing more on the next run.
        assert run(sessions, config, scorer).sent == 0 and len(slack.messages) == 6


def test_without_threads_the_flood_summary_lists_the_reviews_itself(sessions, scorer):
    with SlackReceiver() as slack:
        config = make_config(slack, webhook=True)
        crawl(sessions, add_source(sessions), [item(n) for n in range(5)])
        report = run(sessions, config, scorer)
        assert len(slack.messages) == 1
        listed = texts(slack.messages[0])
        assert all(f"Customer {n}" in listed for n in range(5))
        assert report.sent == 1 and {s for _, _, s in outbox(sessions)} == {"sent"}


def test_alerts_under_a_failed_summary_wait_for_it_and_keep_their_order(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        crawl(sessions, add_source(sessions), [item(n) for n in range(4)])
        slack.fail_next(1, status=503)
        first = run(sessions, config, scorer)
        assert slack.messages == [] and first.sent == 0 and first.retrying == 5
        later = run(sessions, config, scorer, at=NOW + timedelta(minutes=5))
        assert later.sent == 5
        summary, *replies = slack.messages
        assert [m["thread_ts"] for m in replies] == [summary["ts"]] * 4
        assert [texts(m).count(f"Customer {n}") > 0 for n, m in enumerate(replies)] == [True] * 4


# --- updates -------------------------------------------------------------------------------------------------


def test_an_edit_and_a_business_reply_update_the_alert_in_place_and_in_its_thread(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        source_id = add_source(sessions)
        crawl(sessions, source_id, [item(1)])
        run(sessions, config, scorer)
        (alert,) = slack.messages
        later = NOW + timedelta(hours=3)
        crawl(sessions, source_id, [item(1, rating=4, reply="We are sorry, a voucher is on its way.")], at=later)
        report = run(sessions, config, scorer, at=later)
        assert report.sent == 1  # an update, not a second alert
        edited, reply = slack.messages[1:]
        assert edited["kind"] == "update" and edited["ts"] == alert["ts"] and edited["channel"] == alert["channel"]
        assert "✅ no action needed now" in texts(edited) and "rating 1★ → 4★" in texts(edited)
        assert reply["thread_ts"] == alert["ts"] and "the business replied on the site" in texts(reply)
        assert [k for k, _, _ in outbox(sessions)] == ["alert", "update"]
        assert run(sessions, config, scorer, at=later + timedelta(hours=1)).sent == 0


def test_an_update_for_an_alert_that_never_went_out_is_dropped_not_sent(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        source_id = add_source(sessions)
        crawl(sessions, source_id, [item(1)])
        slack.fail_next(1, status=400, error="invalid_blocks")  # permanent: the alert fails
        run(sessions, config, scorer)
        crawl(sessions, source_id, [item(1, rating=2)], at=NOW + timedelta(hours=1))
        run(sessions, config, scorer, at=NOW + timedelta(hours=1))
        assert slack.messages == [] and [s for _, _, s in outbox(sessions)] == ["failed"]


# --- reminders and handle ------------------------------------------------------------------------------------


def test_an_unanswered_negative_review_gets_one_reminder_in_its_thread_after_the_deadline(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        source_id = add_source(sessions)
        crawl(sessions, source_id, [item(1), item(2)])
        run(sessions, config, scorer)
        assert run(sessions, config, scorer, at=NOW + timedelta(hours=47)).sent == 0
        set_status(sessions, 2, "resolved", Actor("ana", "cli"), note="called them", now=NOW + timedelta(hours=47))
        assert run(sessions, config, scorer, at=NOW + timedelta(hours=47)).sent == 1  # review 2's update
        assert len(slack.messages) == 4  # two alerts, then the update: the edit and its thread reply
        report = run(sessions, config, scorer, at=NOW + timedelta(hours=49))
        assert report.sent == 1
        reminder = slack.messages[-1]
        first_alert = slack.messages[0]
        assert reminder["thread_ts"] == first_alert["ts"]
        assert "Still unanswered after 49 h" in texts(reminder) and "repwatch handle 1" in texts(reminder)
        assert slack.requests[-1]["body"].get("reply_broadcast") in (True, "true", "1")
        assert run(sessions, config, scorer, at=NOW + timedelta(hours=80)).sent == 0


def test_a_snoozed_review_is_reminded_when_the_snooze_ends_not_before(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        crawl(sessions, add_source(sessions), [item(1)])
        run(sessions, config, scorer)
        snooze(sessions, 1, timedelta(days=1), Actor("ana", "slack"), now=NOW + timedelta(hours=40))

        def reminders() -> int:
            return sum("Still unanswered" in texts(message) for message in slack.messages)

        run(sessions, config, scorer, at=NOW + timedelta(hours=49))
        assert reminders() == 0  # due, but snoozed
        run(sessions, config, scorer, at=NOW + timedelta(hours=64, minutes=1))
        assert reminders() == 1  # the snooze ended
        assert run(sessions, config, scorer, at=NOW + timedelta(hours=70)).sent == 0  # once


def test_resolving_a_review_settles_its_alert_and_names_who_did_it(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        crawl(sessions, add_source(sessions), [item(1)])
        run(sessions, config, scorer)
        outcome = set_status(sessions, 1, "resolved", Actor("ana", "cli"), note="refunded <!channel>",
                             now=NOW + timedelta(hours=1))
        assert outcome.status == "resolved" and outcome.updates_queued == 1
        deliver(sessions, config, now=lambda: NOW + timedelta(hours=1))
        edited, reply = slack.messages[1:]
        assert edited["ts"] == slack.messages[0]["ts"] and "✅" in texts(edited)
        assert "marked resolved by ana: refunded &lt;!channel&gt;" in texts(reply)  # the note is shown, inert


# --- spikes --------------------------------------------------------------------------------------------------


def seed_history(sessions, source_id: int, per_day: list[int]) -> None:
    """Scored negative reviews first seen on each of the last days (index 0 = the last 24 h)."""
    with sessions.begin() as session:
        n = 0
        for day, count in enumerate(per_day):
            for _ in range(count):
                n += 1
                seen = NOW - timedelta(days=day, hours=1) if day else NOW - timedelta(hours=2, minutes=n)
                session.add(Review(
                    source_id=source_id, external_id=f"h{source_id}-{n}", url=f"https://acme.example/h{n}",
                    body=f"bad {n}", rating=1, content_hash=str(n), first_seen_at=seen, last_seen_at=seen,
                    sentiment_label="neg", severity="high", scored_at=seen, author=f"H{n}",
                ))


def test_a_spike_of_negative_reviews_sends_one_message_for_the_source(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        tp, web = add_source(sessions, history_days=30), add_source(sessions, "acme-web", history_days=30)
        seed_history(sessions, tp, [6, 1, 0, 2, 1, 0, 1, 1])
        seed_history(sessions, web, [1, 1, 1, 1, 1, 1, 1, 1])
        queue_followups(sessions, config, now=NOW)
        queue_followups(sessions, config, now=NOW + timedelta(hours=2))  # a later run in the same spike: nothing new
        deliver(sessions, config, now=lambda: NOW + timedelta(hours=2))
        (spike,) = slack.messages
        said = texts(spike)
        assert "Spike: 6 negative reviews in 24 h for Acme on Trustpilot" in said
        assert "Usually 0.9 ± 0.6 a day" in said and "Examples:" in said


def test_no_spike_without_a_weeks_history_or_under_the_minimum(sessions, scorer):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        young = add_source(sessions, history_days=3)
        seed_history(sessions, young, [9])
        old = add_source(sessions, "acme-web", history_days=30)
        seed_history(sessions, old, [2, 0, 0, 0, 0, 0, 0, 0])  # above mean + kσ, under min_reviews (3)
        assert queue_followups(sessions, config, now=NOW).spikes == 0
        assert slack.messages == []


# --- source health -------------------------------------------------------------------------------------------


def set_health(sessions, source_id: int, *, state: str, failures: int, error: str | None = None) -> None:
    with sessions.begin() as session:
        source = session.get(Source, source_id)
        source.state, source.consecutive_failures, source.last_error = state, failures, error
        if state == "ok":
            source.last_success_at = NOW


def test_the_operator_hears_once_when_a_source_goes_bad_and_once_when_it_recovers(sessions):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack, "  source_health: {after_failures: 3, channel: \"#ops\"}\n")
        source_id = add_source(sessions)
        for failures in (1, 2):
            set_health(sessions, source_id, state="failing", failures=failures, error="HTTP 503 on page 1")
            assert queue_followups(sessions, config, now=NOW).health == 0
        for failures in (3, 4, 5):
            set_health(sessions, source_id, state="blocked", failures=failures, error="blocked: cloudflare")
            queue_followups(sessions, config, now=NOW)
        set_health(sessions, source_id, state="ok", failures=0)
        queue_followups(sessions, config, now=NOW)
        queue_followups(sessions, config, now=NOW)
        deliver(sessions, config, now=lambda: NOW)
        bad, recovered = slack.messages
        assert "acme-tp (Trustpilot) is blocked" in texts(bad) and "3 crawls in a row failed" in texts(bad)
        assert "blocked: cloudflare" in texts(bad)
        assert "acme-tp (Trustpilot) is crawled again" in texts(recovered)
        assert bad["channel"] == recovered["channel"]  # the health channel, #ops
        # A new bad spell is told again.
        set_health(sessions, source_id, state="failing", failures=3, error="timeout")
        assert queue_followups(sessions, config, now=NOW).health == 1


def test_a_source_that_usually_has_reviews_and_went_quiet_is_reported_once(sessions):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack, "  source_health: {silence: 14d}\n")
        busy = add_source(sessions, history_days=120)
        quiet_usually = add_source(sessions, "acme-web", history_days=120)
        with sessions.begin() as session:
            for n in range(24):  # two a week until 20 days ago
                published = NOW - timedelta(days=20 + n * 3.5)
                session.add(Review(source_id=busy, external_id=f"b{n}", url=f"https://x.example/b{n}", body="ok",
                                   rating=4, content_hash=str(n), published_at=published, first_seen_at=published,
                                   last_seen_at=NOW, sentiment_label="pos", scored_at=published))
            session.add(Review(source_id=quiet_usually, external_id="q", url="https://x.example/q", body="ok",
                               rating=4, content_hash="q", published_at=NOW - timedelta(days=60),
                               first_seen_at=NOW - timedelta(days=60), last_seen_at=NOW, sentiment_label="pos"))
        set_health(sessions, busy, state="ok", failures=0)
        set_health(sessions, quiet_usually, state="ok", failures=0)
        assert queue_followups(sessions, config, now=NOW).health == 1
        assert queue_followups(sessions, config, now=NOW + timedelta(days=1)).health == 0
        deliver(sessions, config, now=lambda: NOW + timedelta(days=1))
        (quiet,) = slack.messages
        assert "acme-tp (Trustpilot): no new reviews for 20 days" in texts(quiet)
        assert "about 1.9 new reviews a week" in texts(quiet)


def test_a_spike_spread_over_a_businesss_sources_is_one_business_message(sessions):
    with SlackReceiver(token="xoxb-test-bot-token") as slack:
        config = make_config(slack)
        tp, web = add_source(sessions, history_days=30), add_source(sessions, "acme-web", history_days=30)
        seed_history(sessions, tp, [2, 0, 0, 0, 0, 0, 0, 0])  # under min_reviews on each source…
        seed_history(sessions, web, [2, 0, 0, 0, 0, 0, 0, 0])  # …but 4 for the business, usually 0
        assert queue_followups(sessions, config, now=NOW).spikes == 1
        deliver(sessions, config, now=lambda: NOW)
        (spike,) = slack.messages
        assert "Spike: 4 negative reviews in 24 h for Acme (all sites)" in texts(spike)
