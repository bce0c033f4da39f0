"""Every regex that sees page or review text runs in linear time, on crafted worst cases of 1 MiB and on fuzzed ones.

How this is told apart without a timing threshold that could flake: a regex that is linear reads 1 MiB in
a fraction of a second (the slowest here 0.7 s, on a machine busy with two other test runs); one that backtracks
quadratically needs ~10^12 steps on it, hours (the ones fixed for issue 18 took 0.6 s on 2 KB and 53 s on 256 KB;
the feed prolog's was exponential: 22 empty comments took 1 s, each 2 more four times as long). So each run gets a
hard limit, HARD_LIMIT seconds: a factor of ~30 above the slowest linear run and of hundreds below quadratic.
The limit is SIGALRM (tests/limits.py), which Python's regex engine checks as it steps, so a runaway match is
interrupted (checked on this machine: a match stuck in backtracking ends within the second).

The worst cases are each pattern's own openers repeated without what must follow them ("<script>" with no
"</script>", digits with no "/", spaces with no ":"), where a backtracking engine retries from every position;
the fuzz test repeats random combinations of all the patterns' openers (128 KiB, same limit). `PATTERNS` must name
every module-level pattern of the modules that read page or review text (checked below), so that a new regex is
either given worst cases here or said to see no such text.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alerts.text
import models.textsafe
import monitor.sentiment.english
import spiders.blocked
import spiders.extract
import spiders.generic.feed
import spiders.generic.schema_org
import spiders.generic.selectors
import spiders.hostile
import spiders.pipelines.normalize
import spiders.sites.bbb
import spiders.sites.ceneo
import spiders.sites.consumeraffairs
import spiders.sites.skroutz
import spiders.sites.trustpilot
import spiders.sites.yelp
from monitor.keywords import KeywordSet
from spiders.pipelines.normalize import clean_text, html_to_text
from tests.limits import finishes

HARD_LIMIT = 20.0  # seconds for one run on 1 MiB; see the module docstring
SIZE = 1024 * 1024
FUZZ_SIZE = 128 * 1024  # quadratic is still minutes here

MODULES: list[ModuleType] = [
    spiders.pipelines.normalize, spiders.extract, spiders.blocked, spiders.hostile, spiders.generic.feed,
    spiders.generic.schema_org, spiders.generic.selectors, spiders.sites.bbb, spiders.sites.ceneo,
    spiders.sites.consumeraffairs, spiders.sites.skroutz, spiders.sites.trustpilot, spiders.sites.yelp,
    models.textsafe, alerts.text, monitor.sentiment.english,
]
# Module-level patterns that never see page or review text.
NOT_PAGE_TEXT = {
    "spiders.hostile._ANNOUNCED_SIZE": "Scrapy's exception message",
}

_HTML = ["<p", "</p", "<br", "<", "<!-"]
_SPACE = [" ", "\n", " \n", "\n\n ", "\t"]
_DIGITS = ["1", "1.", "1,1", "1 ", "12345"]
# name → (the pattern, its worst-case openers). Patterns written inline in the code are listed under their place.
PATTERNS: dict[str, tuple[re.Pattern[Any], list[str]]] = {
    "spiders.pipelines.normalize._NUL_OR_SURROGATE": (spiders.pipelines.normalize._NUL_OR_SURROGATE, ["\x00", "\ud800"]),
    "spiders.pipelines.normalize._WHITESPACE": (spiders.pipelines.normalize._WHITESPACE, _SPACE),
    "spiders.pipelines.normalize._LOOKS_LIKE_MARKUP": (spiders.pipelines.normalize._LOOKS_LIKE_MARKUP, _HTML + ["x<y "]),
    "spiders.pipelines.normalize._HAS_YEAR": (spiders.pipelines.normalize._HAS_YEAR, _DIGITS),
    "spiders.pipelines.normalize._HORIZONTAL_SPACE": (spiders.pipelines.normalize._HORIZONTAL_SPACE, _SPACE),
    "spiders.pipelines.normalize._BLANK_LINES": (spiders.pipelines.normalize._BLANK_LINES, _SPACE + ["\n\n"]),
    "spiders.pipelines.normalize._CONTROL_OR_SURROGATE": (spiders.pipelines.normalize._CONTROL_OR_SURROGATE, ["\x00a"]),
    "spiders.pipelines.normalize._NOT_CLEAN_CHARS": (spiders.pipelines.normalize._NOT_CLEAN_CHARS, ["a", " "]),
    "spiders.extract._FENCE_OPEN": (spiders.extract._FENCE_OPEN, ["```", " ", "```html "]),
    "spiders.extract._FENCE_CLOSE": (spiders.extract._FENCE_CLOSE, ["```", "``` ", "\n```\n", "\n"]),
    "spiders.extract._JSON_START": (spiders.extract._JSON_START, _SPACE),
    **{
        f"spiders.blocked.{name}": (getattr(spiders.blocked, name), [
            "<title>", "<title> ", "<title>access denied</title>", "<title>access denied</title> reference #1",
            "cf_chl_", "_incapsula_resource?", "<title>just a moment", " ",
            "<title>access denied</title>reference&#32;&#35;1", "<title>sucuri", "errors.edgesuite",
        ])
        for name in ("_CLOUDFLARE_PAGE", "_JUST_A_MOMENT", "_CLOUDFLARE_HINT", "_PERIMETERX_PAGE", "_PERIMETERX_HINT",
                     "_DENIED_TITLE", "_DATADOME_PAGE", "_IMPERVA_PAGE", "_IMPERVA_HINT", "_AKAMAI_PAGE",
                     "_AKAMAI_OWN_PAGE", "_SUCURI_PAGE", "_AMAZON_PAGE")
    },
    "spiders.generic.feed._FEED_ROOT": (spiders.generic.feed._FEED_ROOT, ["<!---->", "<?x?>", "<!--", "<?", " ", "<!DOCTYPE"]),
    "spiders.generic.schema_org._JSON_COMMENT_WRAPPERS": (
        spiders.generic.schema_org._JSON_COMMENT_WRAPPERS, ["-->", "--> ", " ", "<!--", "]]> "]
    ),
    "spiders.generic.schema_org._number (inline)": (re.compile(r"-?\d+(?:[.,]\d+)?"), _DIGITS + ["-"]),
    "spiders.generic.schema_org._types (inline)": (re.compile(r"[/#:]"), ["a", "/"]),
    "spiders.generic.selectors._NUMBER": (re.compile(spiders.generic.selectors._NUMBER), _DIGITS),
    "spiders.sites.bbb._PAGE_PARAMETER": (spiders.sites.bbb._PAGE_PARAMETER, ["?page=", "&page=1", "page="]),
    "spiders.sites.bbb._STATE_START": (
        spiders.sites.bbb._STATE_START, ["window.__PRELOADED_STATE__", "window.__PRELOADED_STATE__ ", " = "]
    ),
    "spiders.sites.bbb._US_DATE": (spiders.sites.bbb._US_DATE, [" ", "1/", "11/11/"]),
    "spiders.sites.ceneo._SCORE": (spiders.sites.ceneo._SCORE, _DIGITS + ["1/ ", "1 / "]),
    "spiders.sites.ceneo._REVIEW_PAGE": (spiders.sites.ceneo._REVIEW_PAGE, ["/opinie-1", "/opinie-"]),
    "spiders.sites.ceneo._LOCAL_TIME": (spiders.sites.ceneo._LOCAL_TIME, [" ", "2024-01-01 "]),
    "spiders.sites.consumeraffairs._LABELLED_DATE": (
        spiders.sites.consumeraffairs._LABELLED_DATE, _SPACE + ["a ", "a  ", "a: "]
    ),
    "spiders.sites.consumeraffairs._MONTH_DATE": (
        spiders.sites.consumeraffairs._MONTH_DATE, ["Jan ", "Jan 1", "January 12, ", "a"]
    ),
    "spiders.sites.skroutz._API_PATH": (spiders.sites.skroutz._API_PATH, ["/shops/", "/shops/1", "/skus/1/reviews"]),
    "spiders.sites.trustpilot._REVIEW_ID_IN_URL": (
        spiders.sites.trustpilot._REVIEW_ID_IN_URL, ["/reviews/", "/reviews/abcdef12"]
    ),
    "spiders.sites.trustpilot._RATED_N": (spiders.sites.trustpilot._RATED_N, ["Rated 1", "Rated 1.1 out of "]),
    "spiders.sites.trustpilot._STAR_COUNT_CLASS": (spiders.sites.trustpilot._STAR_COUNT_CLASS, ["count-1", "count-"]),
    "spiders.sites.trustpilot._PLAIN_ID": (spiders.sites.trustpilot._PLAIN_ID, ["a", "a "]),
    "spiders.sites.yelp._STARS": (spiders.sites.yelp._STARS, ["1.", "1 ", "1.1", "1 sta"]),
    "spiders.sites.yelp._US_DATE": (spiders.sites.yelp._US_DATE, ["1/", "11/11/", "1"]),
    "models.textsafe._UNSAFE": (models.textsafe._UNSAFE, ["\x00a"]),
    "models.textsafe.ANSI_SEQUENCE": (models.textsafe.ANSI_SEQUENCE, ["\x1b[", "\x1b]", "\x1b[0;", "\x1b[ ", "\x1b]0;x"]),
    "alerts.text._INVISIBLE": (alerts.text._INVISIBLE, ["\x00a"]),
    "alerts.text._SURROGATE": (alerts.text._SURROGATE, ["\ud800a"]),
    "alerts.text._URL_UNSAFE": (alerts.text._URL_UNSAFE, ["a", " "]),
    "alerts.text.visible_text (inline)": (re.compile(r"\n{3,}"), _SPACE),
    "alerts.text._FORMAT_MARKS": (alerts.text._FORMAT_MARKS, ["*", "a"]),
    "alerts.text._LINE_START_MARK": (alerts.text._LINE_START_MARK, ["1", " ", "\n1", "\n ", "\n1 "]),
    "monitor.sentiment.english.COMPLAINT_PHRASES": (
        monitor.sentiment.english.COMPLAINT_PHRASES, ["not ", "not be ", " "]
    ),
    "monitor.sentiment.english._SENTENCE_BREAK": (monitor.sentiment.english._SENTENCE_BREAK, [". ", "ab.", " ", "\n"]),
}
# Keyword sets are compiled from the owner's keywords: one with multi-word and stem keywords stands for them all.
KEYWORDS = KeywordSet(["money back", "never  again", "oszust*", "scam"])
KEYWORD_OPENERS = ["money ", "money", "never ", "oszus", "a"]
_TAILS = ["", "x"]  # the text ends where the opener's rest should be, or with something else


def worst_case(unit: str, size: int, tail: str, *, as_bytes: bool) -> Any:
    """`unit` repeated to `size` characters, then `tail`; UTF-8 bytes for a bytes pattern."""
    text = (unit * (size // len(unit) + 1))[:size] + tail
    return text.encode("utf-8", "surrogatepass") if as_bytes else text


def run_every_way(pattern: re.Pattern[Any], text: Any) -> None:
    """What the code does with a pattern: search from every position (finditer, as sub and findall do) and match."""
    for _ in pattern.finditer(text):
        pass
    pattern.match(text)


def test_every_pattern_of_the_modules_that_read_page_text_is_listed():
    listed = {id(pattern) for pattern, _ in PATTERNS.values()}
    unlisted = {
        f"{module.__name__}.{name}"
        for module in MODULES
        for name, value in vars(module).items()
        if isinstance(value, re.Pattern) and id(value) not in listed  # an imported pattern is listed where it lives
    }
    assert unlisted - set(NOT_PAGE_TEXT) == set()


def runs(name: str) -> tuple[Callable[[Any], Any], list[str], bool]:
    """(what the code does with the text, the worst-case openers, whether it reads bytes) for a PATTERNS name or
    "keywords"."""
    if name == "keywords":
        return KEYWORDS.find, KEYWORD_OPENERS, False
    pattern, openers = PATTERNS[name]
    return (lambda text: run_every_way(pattern, text)), openers, isinstance(pattern.pattern, bytes)


NAMES = [*sorted(PATTERNS), "keywords"]


@pytest.mark.parametrize("name", NAMES)
def test_each_pattern_is_linear_on_its_worst_cases(name):
    run, openers, as_bytes = runs(name)
    slow = [
        opener for opener in openers
        if not finishes(lambda: run(worst_case(opener, SIZE, "", as_bytes=as_bytes)), HARD_LIMIT)  # noqa: B023
    ]
    assert slow == [], f"{name} is not linear on 1 MiB of these repeated: {slow}"


_ALL_OPENERS = sorted({opener for _, openers in PATTERNS.values() for opener in openers} | set(KEYWORD_OPENERS))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_each_pattern_is_linear_on_fuzzed_repetitions(name, data):
    run, _, as_bytes = runs(name)
    unit = "".join(data.draw(st.lists(st.sampled_from(_ALL_OPENERS), min_size=1, max_size=4), label="unit"))
    tail = data.draw(st.sampled_from(_TAILS), label="tail")
    text = worst_case(unit, FUZZ_SIZE, tail, as_bytes=as_bytes)
    assert finishes(lambda: run(text), HARD_LIMIT), f"{name} is not linear on {unit!r} repeated"


@pytest.mark.parametrize(
    "markup",
    ["<p>x</p>" + "<script>" * (SIZE // 8), "<br" * (SIZE // 3), "<li" * (SIZE // 3), "<p" * (SIZE // 2),
     "</p" * (SIZE // 3), "<!--" * (SIZE // 4), "<div>" * (SIZE // 5), "<style><b>" * (SIZE // 10),
     "<p " + "a=" * (SIZE // 2), "&lt;p&gt;" * (SIZE // 9)],
    ids=lambda markup: repr(markup[:12]),
)
def test_review_markup_is_turned_into_text_in_linear_time(markup):
    assert finishes(lambda: (html_to_text(markup), clean_text(markup)), HARD_LIMIT)
