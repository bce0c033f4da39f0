"""The one item every spider yields: a Review, with its business reply if the site shows one."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Reply:
    """The business's public answer to a review, as seen on the site."""

    body: str
    published_at: datetime | None = None


@dataclass(slots=True)
class ReviewItem:
    """One review as a site shows it.

    `external_id` is the site's own id (stable across crawls); `rating` is on a 1-5 scale or None;
    datetimes are tz-aware UTC once the normalize pipeline has run.
    """

    external_id: str
    url: str
    body: str
    rating: float | None = None
    author: str | None = None
    title: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    reply: Reply | None = None
    # The app's version the review was written on (app stores).
    app_version: str | None = None
    # Votes the post has where the site counts them (Reddit score, likes, Hacker News points), as last seen.
    votes: int | None = None
    source: str = ""  # the config source name; set by the spider, not the parser
    snippet_hash: str | None = field(default=None, repr=False)  # sha256 of the raw markup/JSON it came from

    def content_hash(self) -> str:
        """Hash of what the reviewer and the business said; a change means a new ReviewVersion."""
        parts = [
            self.title or "",
            self.body,
            "" if self.rating is None else f"{self.rating:g}",
            self.reply.body if self.reply else "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def to_json_dict(self) -> dict[str, Any]:
        """The `repwatch extract` line: ISO dates, integral ratings as ints."""
        data = asdict(self)
        data.pop("snippet_hash", None)
        data.pop("source", None)
        for key in ("app_version", "votes"):
            if data[key] is None:
                data.pop(key)  # only app stores and social kinds have these: other kinds' lines stay as they were
        if self.rating is not None and float(self.rating).is_integer():
            data["rating"] = int(self.rating)
        data["published_at"] = self.published_at.isoformat() if self.published_at else None
        if self.reply:
            data["reply"] = {
                "body": self.reply.body,
                "published_at": self.reply.published_at.isoformat() if self.reply.published_at else None,
            }
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), ensure_ascii=False)


def snippet_hash(raw: str | bytes) -> str:
    """sha256 of the raw snippet a review was parsed from (evidence for disputes)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()
