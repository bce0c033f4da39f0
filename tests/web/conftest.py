"""The web inbox under test: a real server (uvicorn on 127.0.0.1, port 0, in a thread) over a seeded database,
people to log in as, and an HTTP client that logs in as a browser would (the CSRF token read from the form)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from models.tables import Business, Review, Source
from monitor.config import Config, parse_config
from monitor.service.users import add_user
from monitor.web.server import WebServer

PASSWORDS = {"olivia": "owner-password-1", "max": "member-password-1", "nina": "member-password-2"}
# A review written to attack the page that shows it: markup, a script, an event handler, a javascript: link.
HOSTILE_AUTHOR = '<b id="pwn-author">Mallory</b><script>window.pwned = "author"</script>'
HOSTILE_BODY = ('Awful! <script>window.pwned = "body"</script><img src=x id="pwn-img" onerror="window.pwned = \'img\'">'
                '</textarea></blockquote><a id="pwn-link" href="javascript:window.pwned=1">click</a> {{ 7*7 }}')
HOSTILE_URL = "javascript:window.pwned='url'"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
VERSION = re.compile(r'name="seen_version" value="(\d+)"')


def web_config(tmp_path: Path, database_url: str, **web: object) -> Config:
    settings = "".join(f"\n  {key}: {value}" for key, value in web.items())
    return parse_config(f"""
data_dir: {tmp_path / 'data'}
database: {database_url}
businesses:
  - name: Harbour Lane Coffee
    sources:
      - name: harbour-trustpilot
        kind: trustpilot
        url: https://www.trustpilot.com/review/harbourlane.example
      - name: harbour-website
        kind: schema_org
        url: https://harbourlane.example/reviews
web:
  port: 0{settings}
""")


@dataclass(frozen=True)
class Seeded:
    """Review ids by what they are."""

    complaints: list[int]  # open negative reviews, oldest first
    hostile: int
    praise: int  # a 5★ review: not in the inbox


def seed(sessions, now: datetime) -> Seeded:
    with sessions.begin() as session:
        business = Business(name="Harbour Lane Coffee")
        trustpilot = Source(business=business, name="harbour-trustpilot", kind="trustpilot",
                            url="https://www.trustpilot.com/review/harbourlane.example")
        website = Source(business=business, name="harbour-website", kind="schema_org",
                         url="https://harbourlane.example/reviews")
        complaints = []
        texts = [
            ("Cold coffee, rude staff", "The flat white was cold and the barista rolled his eyes.", "en", 1, trustpilot),
            ("Waited 40 minutes", "Forty minutes for a croissant. Never again.", "en", 2, trustpilot),
            ("Kawa zimna", "Kawa była zimna, obsługa niemiła.", "pl", 1, website),
            ("Dirty tables", "Sticky tables and an overflowing bin by the door.", "en", 2, website),
        ]
        for index, (title, body, language, stars, source) in enumerate(texts):
            review = Review(source=source, external_id=f"c{index}", url=f"https://reviews.example/c{index}",
                            author=f"Customer {index}", rating=stars, title=title, body=body, language=language,
                            content_hash=f"c{index}", published_at=now - timedelta(hours=60 - index * 10),
                            first_seen_at=now - timedelta(hours=50 - index * 10), sentiment_label="neg",
                            sentiment_lang=language, severity="normal", status="new")
            session.add(review)
            complaints.append(review)
        hostile = Review(source=trustpilot, external_id="hostile", url=HOSTILE_URL, author=HOSTILE_AUTHOR, rating=1,
                         title='<i id="pwn-title">title</i>', body=HOSTILE_BODY, language="en", content_hash="h",
                         published_at=now - timedelta(hours=5), first_seen_at=now - timedelta(hours=4),
                         sentiment_label="neg", sentiment_lang="en", severity="high", status="new")
        praise = Review(source=trustpilot, external_id="praise", url="https://reviews.example/praise",
                        author="Happy Regular", rating=5, title="Best coffee", body="Lovely place.", language="en",
                        content_hash="p", published_at=now - timedelta(hours=3), first_seen_at=now - timedelta(hours=2),
                        sentiment_label="pos", sentiment_lang="en", status="new")
        session.add_all([hostile, praise])
        session.flush()
        return Seeded([r.id for r in complaints], hostile.id, praise.id)


@dataclass
class Inbox:
    server: WebServer
    seeded: Seeded
    sessions: object
    config: Config

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def login(self, name: str, password: str | None = None, client: httpx.Client | None = None) -> httpx.Client:
        client = client or self.client()
        page = client.get("/login")
        response = client.post("/login", data={"csrf": csrf_of(page.text), "name": name,
                                               "password": password or PASSWORDS[name], "next": "/"})
        assert response.status_code == 303, response.text
        return client


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match[1]


def version_of(html: str) -> int:
    match = VERSION.search(html)
    assert match, "no seen_version in the page"
    return int(match[1])


def add_people(sessions) -> None:
    add_user(sessions, "olivia", "owner", PASSWORDS["olivia"])
    add_user(sessions, "max", "member", PASSWORDS["max"])
    add_user(sessions, "nina", "member", PASSWORDS["nina"])


@pytest.fixture
def inbox(tmp_path, database_url):
    """The inbox served over a seeded database (SQLite, and PostgreSQL where configured), with three people."""
    from models.db import connect, migrate, session_factory

    engine = connect(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    seeded = seed(sessions, now)
    add_people(sessions)
    config = web_config(tmp_path, database_url)
    with WebServer(config, sessions=sessions) as server:
        yield Inbox(server, seeded, sessions, config)
    engine.dispose()


@pytest.fixture
def sqlite_inbox(tmp_path):
    """The same on SQLite only (the browser tests: the PostgreSQL variants of the HTTP tests cover the database)."""
    from models.db import connect, migrate, session_factory

    url = f"sqlite:///{tmp_path / 'repwatch.db'}"
    engine = connect(url)
    migrate(engine)
    sessions = session_factory(engine)
    seeded = seed(sessions, datetime.now(UTC))
    add_people(sessions)
    config = web_config(tmp_path, url)
    with WebServer(config, sessions=sessions) as server:
        yield Inbox(server, seeded, sessions, config)
    engine.dispose()
