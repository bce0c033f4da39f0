"""Language packs: one YAML file per language (keywords, topics, drafts, anchors, detection), checked and cached."""
from __future__ import annotations

import difflib
import re
import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, ValidationError, model_validator

from models.vocab import Strict

PACKS_DIR = Path(__file__).parent

# The complaint topics a pack gives words for, and how each reads in an alert or the digest (written in English,
# whatever the review's language). config.yaml's `topics:` may add more.
TOPIC_TITLES: dict[str, str] = {
    "delivery": "Delivery",
    "refunds": "Refunds & returns",
    "service": "Customer service",
    "quality": "Product quality",
    "food": "Food & drink",
    "price": "Price",
    "waiting": "Waiting time",
    "billing": "Billing & payment",
    "website": "Website & app",
    "cleanliness": "Cleanliness",
}
DEFAULT_DRAFT = "default"  # a pack's draft for a review none of whose topics has its own
DRAFT_FIELDS = ("author", "business", "site")
# Reviews mix languages: this language's critical words, cues and topic words are checked in every review too.
MIXED_IN = "en"

# Packs are listed in this order, then every other pack by its code. The order is data: the anchor sentences are read
# in it (the rows the shipped head, and an owner's head, are fitted on: another order changes the scores), and where
# keywords of two languages match at one place in a text of unknown language, the earlier language's is reported.
LISTING_ORDER = ("en", "pl", "ro", "el", "de", "lt", "fr", "es", "it", "nl")

_CODE = re.compile(r"^[a-z]{2}$")
_ANY_CODE = re.compile(r"^[a-z]{2,3}$")


def _keyword(value: str) -> str:
    if value != value.strip() or not value.rstrip("*").strip():
        raise ValueError(f"{value!r} is not a keyword (a word, a phrase, or a stem ending in *)")
    if "*" in value[:-1]:
        raise ValueError(f"{value!r}: * may only end a stem")
    return value


def _sentence(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty sentence")
    return value


def _topic(value: str) -> str:
    if value not in TOPIC_TITLES:
        raise ValueError(f"unknown topic {value!r}{_did_you_mean(value, TOPIC_TITLES)}")
    return value


def _draft_key(value: str) -> str:
    return value if value == DEFAULT_DRAFT else _topic(value)


def draft_problems(text: str) -> list[str]:
    """What is wrong with a draft's text: it may only use {author}, {business} and {site} (else it fails at send)."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        return [f"{exc} (write {{{{ and }}}} for literal braces)"]
    fields = ", ".join(f"{{{field}}}" for field in DRAFT_FIELDS)
    return [f"unknown placeholder {{{name}}}; use {fields}" for name in sorted(names - set(DRAFT_FIELDS))]


def _draft(text: str) -> str:
    problems = draft_problems(text)
    if problems:
        raise ValueError("; ".join(problems))
    return text


def _language_code(value: str) -> str:
    if not _ANY_CODE.match(value):
        raise ValueError(f"{value!r} is not a language code (two or three lower-case letters)")
    return value


def _letter(value: str) -> str:
    if len(value) != 1 or value != value.casefold():
        raise ValueError(f"{value!r} is not one lower-case letter")
    return value


Keyword = Annotated[str, AfterValidator(_keyword)]
Keywords = tuple[Keyword, ...]
Sentence = Annotated[str, AfterValidator(_sentence)]
Topic = Annotated[str, AfterValidator(_topic)]
DraftKey = Annotated[str, AfterValidator(_draft_key)]
DraftText = Annotated[str, AfterValidator(_draft)]
LanguageCode = Annotated[str, AfterValidator(_language_code)]
Letter = Annotated[str, AfterValidator(_letter)]


class Band(Strict):
    """On the model's axis s = p(pos) − p(neg): neg at or below `neg`, pos at or above `pos`, neu between."""

    neg: float = Field(ge=-1, le=1)
    pos: float = Field(ge=-1, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.neg >= self.pos:
            raise ValueError(f"neg ({self.neg}) must be below pos ({self.pos})")
        return self


class Anchors(Strict):
    """What a negative, a neutral and a positive review sounds like: the sentences the default head is fitted on."""

    neg: tuple[Sentence, ...] = ()
    neu: tuple[Sentence, ...] = ()
    pos: tuple[Sentence, ...] = ()


class LanguagePack(Strict):
    """Everything repwatch knows about reviews in one language. Every key is optional: a file with none only adds
    its language to the detector's. Keywords are words, phrases, or stems written `stem*` (matching word starts);
    matching ignores case and accents on both sides."""

    critical: Keywords = Field((), description="words making a negative review critical: legal threats, fraud, danger")
    cues: Keywords = Field((), description="complaint cues: a 4-5★ review's text is read (for `mixed`) only with one")
    topics: dict[Topic, Keywords] = Field(default_factory=dict, description="complaint topic → its words")
    false_friends: Keywords = Field((), description="English topic words not checked in this language's reviews")
    drafts: dict[DraftKey, DraftText] = Field(
        default_factory=dict, description="draft replies by topic or `default`, with {author}, {business}, {site}"
    )
    band: Band | None = Field(None, description="the model's thresholds for this language; none: the pooled ones")
    anchors: Anchors = Field(Anchors(), description="anchor sentences for the model's default head")
    lingua: LanguageCode | None = Field(None, description="the code the language detector knows it by, if another")
    aliases: tuple[LanguageCode, ...] = Field((), description="other codes read as this language (a site's nb → no)")
    fold_letters: dict[Letter, str] = Field(
        default_factory=dict, description="letters NFKD leaves whole and what they fold to (ł → l), in all text"
    )
    same_letters: dict[Letter, Letter] = Field(
        default_factory=dict, description="one letter typed two ways: the first read as the second (ş → ș), in all text"
    )

    @model_validator(mode="after")
    def _default_draft(self) -> LanguagePack:
        if self.drafts and DEFAULT_DRAFT not in self.drafts:
            raise ValueError(f"drafts: needs a `{DEFAULT_DRAFT}` draft for reviews none of whose topics has one")
        return self


class LanguagePackError(ValueError):
    """A pack that cannot be used; the message is one line naming the file and the key."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml's parser where PyYAML has it) in which a key given twice is an error, not the last one."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)

_NESTED: dict[str, type[Strict]] = {"band": Band, "anchors": Anchors}


def _did_you_mean(value: str, choices: Any) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else f" (one of: {', '.join(choices)})"


def _describe(error: Any) -> str:
    """One pydantic error as `key.path: what is wrong`."""
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    if error["type"] == "extra_forbidden":
        model = _NESTED.get(loc[0], LanguagePack) if len(loc) > 1 else LanguagePack
        message = "unknown key" + _did_you_mean(loc[-1], model.model_fields)
    elif error["type"] == "string_type":
        message = "expected text (quote words YAML reads as something else: yes, no, on, off, numbers)"
    else:
        message = error["msg"].removeprefix("Value error, ").replace("a valid tuple", "a list")
        message = message.replace("a valid dictionary", "a mapping of keys")
    return f"{'.'.join(loc)}: {message}" if loc else message


def load_pack(path: Path) -> LanguagePack:
    """One pack file, validated; LanguagePackError (one line: the file, the key, the problem) when it is not usable."""
    if not _CODE.match(path.stem):
        raise LanguagePackError(f"{path}: a pack is named by its two-letter ISO 639-1 code (pl.yaml, el.yaml)")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise LanguagePackError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LanguagePackError(f"{path}:{where} not valid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LanguagePackError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    try:
        return LanguagePack.model_validate(raw)
    except ValidationError as exc:
        raise LanguagePackError(f"{path}: " + "; ".join(_describe(error) for error in exc.errors())) from None


def load_packs(directory: Path = PACKS_DIR) -> dict[str, LanguagePack]:
    """Every `<code>.yaml` in `directory`, in LISTING_ORDER then by code, checked against each other."""
    paths = {path.stem: path for path in sorted(directory.glob("*.yaml"))}
    order = [code for code in LISTING_ORDER if code in paths] + [code for code in paths if code not in LISTING_ORDER]
    packs = {code: load_pack(paths[code]) for code in order}
    english = packs.get(MIXED_IN)
    english_words = {word for words in english.topics.values() for word in words} if english else set()
    claimed: dict[str, str] = {}
    letters: dict[str, tuple[str, str]] = {}  # letter → (what it is read as, the pack that says so)
    for code, pack in packs.items():
        path = paths[code]
        for alias in pack.aliases:
            if alias in packs or alias in claimed:
                raise LanguagePackError(f"{path}: aliases: {alias!r} already names {claimed.get(alias, alias)}.yaml")
            claimed[alias] = code
        for word in pack.false_friends:
            if word not in english_words:
                raise LanguagePackError(f"{path}: false_friends: {word!r} is not an English topic word")
        for key in ("same_letters", "fold_letters"):
            for letter, meant in getattr(pack, key).items():
                earlier = letters.setdefault(letter, (meant, code))
                if earlier[0] != meant:
                    raise LanguagePackError(f"{path}: {key}.{letter}: {earlier[1]}.yaml reads it as {earlier[0]!r}")
    return packs


@cache
def packs() -> Mapping[str, LanguagePack]:
    """The shipped packs by code, loaded on first use."""
    return MappingProxyType(load_packs())


def codes() -> tuple[str, ...]:
    """The codes of the shipped packs, in listing order."""
    return tuple(packs())


def pack(code: str) -> LanguagePack:
    """The shipped pack of a language; KeyError naming the known codes when there is none."""
    try:
        return packs()[code]
    except KeyError:
        raise KeyError(f"no language pack {code!r} (have: {', '.join(codes())})") from None
