"""Is a new complaint one already posted elsewhere? Author names and near-duplicate text, compared without a database.

Two posts of one business are one incident when they are close in time (WINDOW) and either carry the same
distinctive author name, or say nearly the same thing in nearly the same words. A wrong link costs more than a
missed one (resolving one post resolves the other, and the second alert hides in the first one's thread), so the
rules lean to precision: a name alone links only when it is a full name that is not a placeholder ("Anonymous",
"A Google user"), and text alone only when the posts share enough of it for the overlap to mean something.
The thresholds were chosen on bench/bench_incidents.py's labelled pairs (bench/RESULTS.md section 7).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WINDOW = timedelta(days=14)  # posts further apart than this are separate complaints
SHINGLE_WORDS = 3  # word n-grams compared; within a sentence, so re-ordered sentences still match
# Near-duplicate text: the share of the shorter post's shingles found in the longer one (containment; a sentence
# added to one post does not lower it) and their Jaccard similarity (which keeps a short text from matching
# because it is contained in a long one).
TEXT_CONTAINMENT = 0.5
TEXT_JACCARD = 0.3
# Fewer shingles in common than this is not evidence alone, whatever the share: short reviews share stock phrases
# ("was cold and the", "overpriced for what you get") with other short reviews.
MIN_SHARED = 7
# A name that fits but is not distinctive alone ("John D." and "John Doe", or "Maria" twice) links with some
# textual support: the same person's second post retells the story in other words.
NAME_SUPPORT_CONTAINMENT = 0.3
NAME_SUPPORT_JACCARD = 0.15

# What sites and people write instead of a name: never evidence of anything (normalised: accents folded, lower
# case, punctuation gone).
PLACEHOLDER_NAMES = frozenset({
    "", "anonymous", "anonymous user", "anonymous reviewer", "anonymous customer", "anon", "a google user",
    "google user", "a yelp user", "yelp user", "a facebook user", "facebook user", "a tripadvisor member",
    "tripadvisor member", "tripadvisor user", "amazon customer", "customer", "a customer", "verified customer",
    "verified buyer", "verified purchaser", "verified reviewer", "guest", "a guest", "user", "deleted user",
    "former user", "unknown", "n a", "na", "none", "null", "someone", "reviewer", "client", "consumer",
    "trustpilot user", "private", "private user", "me",
    # de, pl, ro, el, lt
    "anonym", "anonymer nutzer", "anonymer kunde", "kunde", "gast", "nutzer", "anonim", "anonimowy",
    "uzytkownik", "klient", "gosc", "kupujacy", "utilizator", "utilizator anonim", "anonimos", "ανωνυμος",
    "χρηστης", "πελατης", "επισκεπτης", "anoniminis", "vartotojas", "klientas", "pirkejas",
})
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[.!?;:…\n]+")


def fold(text: str) -> str:
    """Lower case, accents folded (é → e, ł → l, ά → α), for comparing what people typed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("ł", "l").replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise_name(name: str | None) -> str:
    """"  Zoë O'Neil-Smith " → "zoe o neil smith": case, accents, punctuation and spacing do not tell people apart."""
    return " ".join(_WORD.findall(fold(name or "").replace("_", " ")))


@dataclass(frozen=True)
class Name:
    """An author name as compared: its normalised words, and whether it alone is evidence of one person."""

    words: tuple[str, ...]
    distinctive: bool  # a full name: two words of two letters or more, not a placeholder

    @classmethod
    def of(cls, name: str | None) -> Name:
        normalised = normalise_name(name)
        words = tuple(normalised.split())
        if normalised in PLACEHOLDER_NAMES or not words:
            return cls((), False)
        full = sum(len(word) >= 2 and not word.isdigit() for word in words) >= 2
        return cls(words, full)

    def same(self, other: Name) -> bool:
        return bool(self.words) and self.words == other.words

    def fits(self, other: Name) -> bool:
        """The same words, where one side may abbreviate a later word to its initial: "john d" fits "john doe"."""
        if not self.words or not other.words or len(self.words) != len(other.words):
            return False
        if self.words[0] != other.words[0]:
            return False  # first names are written out; "J. Doe" against "John Doe" is too weak a hint
        return all(a == b or (min(len(a), len(b)) == 1 and a[0] == b[0])
                   for a, b in zip(self.words[1:], other.words[1:], strict=True))


def sentences(text: str) -> list[list[str]]:
    """The text's sentences as lists of folded words."""
    return [words for part in _SENTENCE.split(fold(text)) if (words := _WORD.findall(part))]


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[str]:
    """Word n-grams of each sentence (a sentence shorter than n counts as one shingle)."""
    found: set[str] = set()
    for words in sentences(text):
        if len(words) < size:
            found.add(" ".join(words))
        else:
            found.update(" ".join(words[i:i + size]) for i in range(len(words) - size + 1))
    return frozenset(found)


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    containment: float  # of the smaller set in the larger
    smaller: int  # shingles in the smaller set
    shared: int  # shingles in both


def similarity(a: frozenset[str], b: frozenset[str]) -> Similarity:
    if not a or not b:
        return Similarity(0.0, 0.0, min(len(a), len(b)), 0)
    common = len(a & b)
    return Similarity(common / len(a | b), common / min(len(a), len(b)), min(len(a), len(b)), common)


@dataclass(frozen=True)
class Post:
    """One negative review as the linker sees it."""

    id: int
    business_id: int
    posted_at: datetime  # when it was published (or first seen, for sites that give no date)
    author: str | None
    text: str  # title and body
    site: str = ""
    incident_id: int | None = None
    name: Name = field(init=False, compare=False)
    words: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", Name.of(self.author))
        object.__setattr__(self, "words", shingles(self.text))


@dataclass(frozen=True)
class Match:
    """Why two posts are one complaint, in words for the incident's `reason`."""

    post: Post  # the earlier post it matched
    reason: str
    strength: float  # for choosing among several matches: higher is surer


def match(new: Post, old: Post, *, window: timedelta = WINDOW) -> Match | None:
    """The reason `new` is the same complaint as `old`, or None. Never across businesses or beyond the window."""
    if new.id == old.id or new.business_id != old.business_id or abs(new.posted_at - old.posted_at) > window:
        return None
    text = similarity(new.words, old.words)
    if text.shared >= MIN_SHARED and text.containment >= TEXT_CONTAINMENT and text.jaccard >= TEXT_JACCARD:
        return Match(old, f"near-duplicate text (Jaccard {text.jaccard:.2f}, containment {text.containment:.2f})",
                     1.0 + text.containment)
    if new.name.distinctive and new.name.same(old.name):
        return Match(old, f"same author “{' '.join(new.name.words)}”", 1.0)
    if (new.name.fits(old.name) or new.name.same(old.name)) and text.smaller >= 2 \
            and text.containment >= NAME_SUPPORT_CONTAINMENT and text.jaccard >= NAME_SUPPORT_JACCARD:
        return Match(old, f"author “{' '.join(new.name.words)}” ~ “{' '.join(old.name.words)}” and similar text "
                          f"(Jaccard {text.jaccard:.2f}, containment {text.containment:.2f})", 0.5 + text.containment)
    return None


def best_match(new: Post, candidates: Iterable[Post], *, window: timedelta = WINDOW) -> Match | None:
    """The surest match among the candidates (the earliest post breaks a tie), or None."""
    found = [m for old in candidates if (m := match(new, old, window=window)) is not None]
    if not found:
        return None
    return max(found, key=lambda m: (m.strength, -m.post.posted_at.timestamp(), -m.post.id))


def earliest(posts: Sequence[Post]) -> Post:
    """The post an incident starts with: the first published (the lower id breaks a tie)."""
    return min(posts, key=lambda p: (p.posted_at, p.id))
