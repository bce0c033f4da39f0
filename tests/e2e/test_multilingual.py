"""Text-only posts in six languages, end to end: a mentions feed → `repwatch crawl` → each stored with its language,
label and why → each Slack alert shows them with its topics; a happy post in German stays quiet."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from demo.server import SiteServer
from demo.sitegen import SiteReview, atom_feed
from demo.slack_receiver import SlackReceiver
from models.tables import Delivery, Review
from monitor.topics import topic_title
from tests.e2e.conftest import NOW, TOKEN, Setup, write_config

FEED_PATH = "/alerts/feeds/acme-coffee.atom"
BUSINESS = "Acme Coffee"


@dataclass(frozen=True)
class Post:
    lang: str
    topic: str | None  # the complaint topic it is plainly about; None: a happy post
    title: str
    body: str

    @property
    def url(self) -> str:
        return f"https://forum.example/{self.lang}/{hashlib.sha1(self.title.encode()).hexdigest()[:10]}"

    @property
    def text(self) -> str:
        return f"{self.title}. {self.body}"  # what the scorer reads


# Written for this test: each a clear complaint about one thing, in words a visitor would use.
COMPLAINTS = [
    Post("pl", "billing", "Dwa razy pobrali pieniądze za jedno zamówienie",
         "Zapłaciłem kartą za dwie kawy i ciastko, a z konta pobrano dwa razy tę samą kwotę. Paragon mam, ale w "
         "kawiarni twierdzą, że to wina banku, i nikt nie chce tego wyjaśnić. Skandal."),
    Post("ro", "cleanliness", "Mese murdare și toaletă neîngrijită",
         "Mesele erau murdare, pe jos erau resturi de mâncare, iar toaleta mirosea urât. Nu am mai comandat nimic "
         "și am plecat. Dezgustător."),
    Post("el", "waiting", "Μισή ώρα αναμονή για δύο καφέδες",
         "Περιμέναμε μισή ώρα για δύο καφέδες ενώ το μαγαζί ήταν σχεδόν άδειο. Καμία εξήγηση για την καθυστέρηση. "
         "Πολύ κακή εμπειρία, δεν θα ξαναπάμε."),
    Post("de", "service", "Unfreundliches Personal",
         "Die Bedienung war unfreundlich und hat uns angeschnauzt, weil wir nicht sofort wussten, was wir bestellen "
         "wollen. Auf die Frage nach der Toilette kam nur ein genervtes Augenrollen. So behandelt man keine Gäste."),
    Post("lt", "price", "Per brangu",
         "Už mažą kavą ir pyragaičio gabalėlį sumokėjome beveik dvylika svarų. Kainos absurdiškos, o porcijos "
         "mažytės. Tikrai neverta pinigų, nerekomenduoju."),
    Post("en", "refunds", "Cancelled my cake order and kept my money",
         "I paid forty pounds in advance for a birthday cake. They cancelled it the day before, and two weeks later "
         "I still have not had a refund. Three emails and not one answer. Appalling."),
]
HAPPY = Post("de", None, "Wunderbares kleines Café",
             "Der beste Flat White, den ich in England getrunken habe, und der Zitronenkuchen war himmlisch. Das Team "
             "ist herzlich und aufmerksam. Wir kommen bestimmt wieder!")
POSTS = [*COMPLAINTS, HAPPY]


@dataclass
class Crawled:
    code: int
    stderr: str
    reviews: dict[str, Review]  # by post url
    alerted: set[int]  # review ids with an alert in the outbox
    messages: list[dict]  # what Slack accepted


def feed(site_url: str) -> bytes:
    # The feed gives no language and no stars (as a Google Alert's): the text alone says what each post is.
    # Every post is within the first crawl's 72 h window, so each complaint alerts at once.
    return atom_feed(BUSINESS, [
        SiteReview(id=f"post-{n}", author=f"Visitor {n}", rating=None, title=post.title, body=post.body,
                   published_at=NOW - timedelta(hours=2 + 3 * n), language=post.lang, url=post.url)
        for n, post in enumerate(POSTS)
    ], feed_url=site_url + FEED_PATH)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory) -> Crawled:
    """One real `repwatch crawl` of the feed (the model loads once, in the crawl's process)."""
    tmp = tmp_path_factory.mktemp("multilingual")
    with SiteServer() as site, SlackReceiver(token=TOKEN) as slack:
        site.set_page(FEED_PATH, feed(site.url))
        # flood_threshold above the number of complaints: each alert is its own message here (floods: test_outbox).
        config = write_config(tmp, site.url, slack.api_url, business=BUSINESS, alerting="flood_threshold: 20",
                              source=("acme-mentions", "feed", f"{site.url}{FEED_PATH}"))
        result = Setup(site, slack, config, tmp).crawl()
        messages = slack.messages
    reviews: dict[str, Review] = {}
    alerted: set[int] = set()
    if result.code == 0:
        engine = create_engine(f"sqlite:///{tmp / 'data' / 'repwatch.db'}")
        with Session(engine, expire_on_commit=False) as db:
            reviews = {r.url: r for r in db.scalars(select(Review))}
            alerted = set(db.scalars(select(Delivery.review_id).where(Delivery.kind == "alert")))
        engine.dispose()
    return Crawled(result.code, result.stderr, reviews, alerted, messages)


def quoted_sentence(why: str) -> str:
    """The sentence a negative verdict's why quotes: `negative text: "…"` (after a critical reason, if any)."""
    found = re.search(r'negative text: "(.*)"$', why)
    assert found, f"no quoted sentence in why {why!r}"
    return found.group(1).rstrip("…")


def shown(text: str) -> str:
    """Block Kit text as Slack displays it: the three entities it asks senders to escape, decoded."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def fields(message: dict) -> dict[str, str]:
    """The alert's labelled facts (the section with fields): {"Language": "pl", "Sentiment": "neg (-0.72)", …}."""
    section = next(b for b in message["blocks"] if b["type"] == "section" and b.get("fields"))
    return dict(shown(field["text"]).split("\n", 1) for field in section["fields"])


def why_shown(message: dict) -> str | None:
    for block in message["blocks"]:
        elements = block.get("elements") or []
        if block["type"] == "context" and elements and elements[0].get("text") == "*Why it fired*":
            return shown(elements[1]["text"])
    return None


def section_texts(message: dict) -> list[str]:
    return [shown(b["text"]["text"]) for b in message["blocks"] if b["type"] == "section" and b.get("text")]


def button_url(message: dict) -> str:
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    return next(button["url"] for button in actions["elements"] if "url" in button)  # "Open review"


def test_the_crawl_stores_each_post_with_its_detected_language_label_and_why(crawled):
    assert crawled.code == 0, crawled.stderr
    assert set(crawled.reviews) == {post.url for post in POSTS}
    for post in COMPLAINTS:
        review = crawled.reviews[post.url]
        got = (review.language, review.sentiment_lang, review.sentiment_label, review.rating)
        # The feed named no language: the scorer detected it, and read the text as negative.
        assert got == (None, post.lang, "neg", None), f"{post.lang} {post.title!r}: {got}, why {review.sentiment_why!r}"
        assert review.sentiment_score is not None and review.sentiment_score < 0
        assert quoted_sentence(review.sentiment_why) in post.text  # the why quotes the post's own words
        assert review.severity in ("normal", "high", "critical")
        assert review.id in crawled.alerted


def test_a_happy_post_in_german_is_positive_and_does_not_alert(crawled):
    assert crawled.code == 0, crawled.stderr
    review = crawled.reviews[HAPPY.url]
    assert (review.sentiment_lang, review.sentiment_label) == ("de", "pos"), review.sentiment_why
    assert review.severity is None
    assert review.id not in crawled.alerted
    assert HAPPY.url not in [button_url(m) for m in crawled.messages]


def test_each_slack_alert_shows_language_sentiment_topics_and_why(crawled):
    assert crawled.code == 0, crawled.stderr
    by_url = {button_url(message): message for message in crawled.messages}
    assert len(crawled.messages) == len(COMPLAINTS) and set(by_url) == {post.url for post in COMPLAINTS}
    for post in COMPLAINTS:
        message, review = by_url[post.url], crawled.reviews[post.url]
        facts = fields(message)
        assert facts["Language"] == post.lang, facts
        sentiment = re.fullmatch(r"neg \(([-+]\d\.\d\d)\)", facts["Sentiment"])
        assert sentiment and float(sentiment.group(1)) < 0, facts
        topics = facts.get("Topics", "").split(", ")
        assert topic_title(post.topic) in topics, f"{post.lang} {post.title!r}: topics {topics}"
        assert why_shown(message) == review.sentiment_why
        assert f"“{post.title}”" in section_texts(message) and post.body in section_texts(message)


def test_the_feed_generator_round_trips_through_the_feed_spider():
    """atom_feed escapes what it writes: the real feed spider reads back exactly each post (no crawl needed)."""
    extract = pytest.importorskip("spiders.extract")
    tricky = SiteReview(id="tricky", author="Jo & <Co>", rating=None, title=f"{BUSINESS}: \"fish\" & 'chips' <3",
                        body=f"Line one at {BUSINESS} & more\nΩραίο καφέ 🙂 a < b > c", published_at=NOW,
                        url="https://forum.example/t?id=1&page=2")
    url = f"http://127.0.0.1:8000{FEED_PATH}"
    body = feed("http://127.0.0.1:8000")
    got = extract.extract_reviews(body, url, spider="auto")
    assert [(r.title, r.body, r.url, r.rating, r.language) for r in got] == [
        (p.title, p.body, p.url, None, None) for p in POSTS]
    assert len({r.external_id for r in got}) == len(POSTS)
    [item] = extract.extract_reviews(atom_feed(BUSINESS, [tricky]), url, spider="feed")
    assert (item.author, item.title, item.body, item.url, item.published_at) == (
        tricky.author, tricky.title, tricky.body, tricky.url, NOW)
