"""monitor.service.alerting: finished Alert values from review rows, the configured notifiers, and old notifier entries."""
from __future__ import annotations

from datetime import UTC, datetime

from alerts import deprecations
from alerts.base import Topic
from alerts.discord import DiscordNotifier
from alerts.teams import TeamsNotifier
from alerts.webhook import WebhookNotifier
from models.tables import Business, Review, Source
from monitor.service.alerting import AlertBuilder, build_notifiers, business_for, notifiers_of_kind
from monitor.config import parse_config

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_an_alert_names_the_site_a_feed_post_is_on_and_a_mixed_review_gets_its_topics(sessions):
    config = parse_config("""
businesses:
  - name: Acme
    sources: [{name: mentions, kind: feed, url: "https://alerts.example/feeds/acme"}]
""", env={})
    with sessions.begin() as session:
        source = Source(name="mentions", kind="feed", url="https://alerts.example/feeds/acme",
                        business=Business(name="Acme"))
        posts = [Review(source=source, external_id=key, url=url, body=body, rating=rating, content_hash=key,
                        sentiment_label=label, published_at=NOW)
                 for key, url, rating, label, body in (
                     ("p1", "https://forum.example/t/acme/1", None, "neg", "The refund never came."),
                     ("p2", "", 5, "mixed", "Five stars, but they charged me twice and the refund never came."))]
        session.add_all(posts)
        session.flush()
        alerts = AlertBuilder(config).alerts(session, [post.id for post in posts])
    on_forum, mixed = (alerts[post.id] for post in posts)
    assert on_forum.site == "forum.example"  # where the owner must go to answer, not "RSS / Atom feed"
    assert mixed.site == "RSS / Atom feed"  # no link: the feed is all we know
    assert Topic("refunds", "Refunds & returns") in mixed.topics  # with the title the notifiers show


def test_an_alert_carries_configured_topics_by_title_and_a_draft_naming_author_and_business(sessions):
    config = parse_config("""
topics:
  dhl_delays: {en: ["dhl"]}
businesses:
  - name: Acme
    sources: [{name: acme, kind: trustpilot, url: "https://www.trustpilot.com/review/acme.example"}]
""", env={})
    with sessions.begin() as session:
        source = Source(name="acme", kind="trustpilot", url="https://www.trustpilot.com/review/acme.example",
                        business=Business(name="Acme"))
        review = Review(source=source, external_id="r1", url="https://www.trustpilot.com/reviews/r1", author="Jane",
                        body="DHL lost the parcel and the refund never came.", rating=1, content_hash="r1",
                        sentiment_label="neg", sentiment_lang="en", published_at=NOW)
        session.add(review)
        session.flush()
        alert = AlertBuilder(config).alerts(session, [review.id])[review.id]
    assert alert.site == "Trustpilot" and alert.business == "Acme"
    assert alert.topics == (Topic("delivery", "Delivery"), Topic("dhl_delays", "Dhl delays"), Topic("refunds", "Refunds & returns"))
    assert alert.draft_reply is not None and alert.draft_reply.startswith("Hi Jane,") and alert.draft_reply.endswith("— Acme")


CONFIG = """
notifiers:
  ops: {kind: webhook, url: "https://chat.example/hook/s3cr3t-x", format: teams}
  chat: {kind: webhook, url: "https://discord.example/api/webhooks/1/s3cr3t-y", format: discord, min_interval: 0.5}
  own: {kind: webhook, url: "https://own.example/in", format: json}
  team: {kind: teams, url: "https://chat.example/hook/s3cr3t-z"}
businesses:
  - name: Acme
    notify: [own, team]
"""


def test_old_webhook_entries_are_built_as_their_kind_today_and_say_so():
    config = parse_config(CONFIG, env={})
    built = build_notifiers(config)
    assert isinstance(built["ops"], TeamsNotifier) and isinstance(built["chat"], DiscordNotifier)
    assert isinstance(built["own"], WebhookNotifier) and isinstance(built["team"], TeamsNotifier)
    assert built["chat"].config.min_interval == 0.5 and built["ops"].config.min_interval == 1.0
    notes = [note for name, entry in config.notifiers.items() for note in deprecations(name, entry)]
    assert notes == ["notifiers.ops: kind: webhook with format: teams is deprecated; write kind: teams",
                     "notifiers.chat: kind: webhook with format: discord is deprecated; write kind: discord"]


def test_alerts_test_finds_an_old_entry_under_either_kind_and_names_a_business_it_serves():
    config = parse_config(CONFIG, env={})
    assert set(notifiers_of_kind(config, "teams")) == {"ops", "team"}
    assert set(notifiers_of_kind(config, "webhook")) == {"ops", "chat", "own"}
    assert set(notifiers_of_kind(config, "discord")) == {"chat"} and notifiers_of_kind(config, "email") == {}
    # a notifier no business lists (routes, source health) still names the owner's first business
    assert business_for(config, "team") == "Acme" and business_for(config, "ops") == config.businesses[0].name
