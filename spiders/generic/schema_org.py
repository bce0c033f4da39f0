"""Generic spider for schema.org `Review` markup: JSON-LD (any nesting) and microdata, deduplicated."""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeGuard

from lxml import etree
from scrapy.http import Response, TextResponse

from spiders.base import REVIEW_ERRORS, ReviewSpider
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime

# schema.org Review and the subtypes that are reviews written by people.
REVIEW_TYPES = frozenset({"Review", "UserReview", "CriticReview", "EmployerReview"})
_JSON_COMMENT_WRAPPERS = re.compile(r"^\s*(?:<!--|<!\[CDATA\[)|(?:-->|\]\]>)\s*$")
# Microdata extruct is not given, measured on extruct 0.18: it recurses ~4 frames per level of nested items
# (RecursionError past ~250 levels) and is cubic in the nesting (200 levels 2 s, 400 levels 35 s); and for each
# item it subtracts the node-set of its nested items' properties from its own, which libxml2 does in
# |own| x |nested| steps (300 items nested 32 deep on one 1 MB page: 31 s). Real pages nest items 3 deep and hold
# up to ~200 properties; at these limits the worst page found takes ~0.3 s.
MAX_MICRODATA_DEPTH = 16
MAX_MICRODATA_WORK = 10_000_000  # the sum, over items, of the square of the number of properties inside each
# Where a microdata review's own element is kept (for its text when no property holds it); never hashed or shown.
_ELEMENT = "_element"
# Not visible text of a review element: other properties (author, rating, title …), scripts and hidden parts.
_NOT_OWN_TEXT = etree.XPath(
    ".//*[@itemprop or @hidden or @aria-hidden='true' or self::script or self::style or self::noscript"
    " or self::template or self::button]"
)


class SchemaOrgSpider(ReviewSpider):
    """Any page with schema.org reviews (JSON-LD or microdata): recipe blogs, shops, local businesses.

    Ratings are scaled to 1-5 with the page's bestRating/worstRating. Reviews without an id get a stable one made
    from author, date and text.
    """

    name = "schema_org"

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return any(True for _ in _review_nodes(response))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        reviews = []
        occurrences: Counter[tuple[str, str]] = Counter()
        for syntax, node in _review_nodes(response, on_problem=self.problem, on_page_problem=self.stat):
            try:
                review, content_key = self._review(response, node)
            except REVIEW_ERRORS:
                self.problem("schema_org/unreadable_review")
                continue
            # A review posted twice is listed twice: the n-th copy within one syntax gets its own key, and still
            # matches the n-th copy in the other syntax.
            occurrences[syntax, content_key] += 1
            if occurrences[syntax, content_key] > 1:
                content_key = f"{content_key}-{occurrences[syntax, content_key]}"
            reviews.append((review, content_key))
        # Some sites give every review the page's URL as its `url`: such an id identifies nothing.
        id_counts = Counter(review.external_id for review, _ in reviews if review.external_id)
        seen: set[str] = set()
        for review, content_key in reviews:
            if not review.external_id or id_counts[review.external_id] > 1:
                if review.external_id:
                    self.problem("schema_org/shared_review_id")
                review.external_id = content_key
            # The same review marked up twice (JSON-LD and microdata) is one review.
            if review.external_id in seen or content_key in seen:
                continue
            seen.update((review.external_id, content_key))
            yield review

    def next_page(self, response: Response) -> str | None:
        if not is_markup(response):
            return None
        href = response.css("link[rel~=next]::attr(href), a[rel~=next]::attr(href)").get()
        if not href or not href.strip():
            return None
        url = response.urljoin(href.strip())
        return None if url == response.url else url

    def _review(self, response: Response, node: dict[str, Any]) -> tuple[ReviewItem, str]:
        element = node.pop(_ELEMENT, None)
        author = clean_line(_name(node.get("author")))
        body = clean_text(_first(node.get("reviewBody")) or _first(node.get("description")) or _first(node.get("text")))
        if not body and element is not None:
            # Microdata that marks the author and the stars but not the text: the text is the element's own.
            body = own_text(element)
        raw_date = _first(node.get("datePublished")) or _first(node.get("dateCreated"))
        published = parse_datetime(raw_date) if raw_date else None
        if raw_date and published is None:
            self.problem("schema_org/bad_date")
        rating = self._rating(node.get("reviewRating"))
        review_url = _first(node.get("url"))
        review_id = _identifier(node)
        if review_id and review_id.startswith(("/", "#")):
            review_id = response.urljoin(review_id)
        if review_id == response.url:
            review_id = None  # the page's own URL names the page, not this review
        content_key = content_id(author, published.date().isoformat() if published else "", body)
        review = ReviewItem(
            external_id=review_id or "",
            url=response.urljoin(review_url) if isinstance(review_url, str) and review_url.strip() else response.url,
            body=body,
            rating=rating,
            author=author,
            title=clean_line(_first(node.get("name")) or _first(node.get("headline"))),
            published_at=published,
            language=clean_line(_name(node.get("inLanguage"))),
            snippet_hash=snippet_hash(json.dumps(node, sort_keys=True, ensure_ascii=False, default=str)),
        )
        return review, content_key

    def _rating(self, rating: Any) -> float | None:
        """reviewRating → 1-5: 8 of bestRating 10 is 4; an explicit odd worstRating maps the range linearly."""
        rating = _first(rating)
        if rating is None:
            self.problem("schema_org/missing_rating")
            return None
        if isinstance(rating, dict):
            value, best, worst = (_number(_first(rating.get(k))) for k in ("ratingValue", "bestRating", "worstRating"))
        else:
            value, best, worst = _number(rating), None, None
        if value is None:
            self.problem("schema_org/bad_rating")
            return None
        best = 5.0 if best is None else best
        if worst is not None and worst not in (0.0, 1.0) and best > worst:
            scaled = 1 + (value - worst) * 4 / (best - worst)
        elif best > 0:
            scaled = value * 5 / best
        else:
            self.problem("schema_org/bad_rating")
            return None
        if not 1 <= round(scaled, 6) <= 5:
            self.problem("schema_org/rating_out_of_scale")
        return round(min(5.0, max(1.0, scaled)), 2)


def own_text(element: Any) -> str:
    """The visible text of a microdata item's element, without its properties' elements (author, rating, date,
    title: fields of their own), scripts, buttons and hidden parts."""
    from copy import deepcopy

    from spiders.pipelines.normalize import html_to_text

    copy = deepcopy(element)
    copy.tail = None
    for drop in _NOT_OWN_TEXT(copy):
        if drop.getparent() is None:
            continue  # inside an element already dropped
        _drop_keeping_tail(drop)
    text = html_to_text(etree.tostring(copy, encoding="unicode", method="html"))
    # What separated the dropped fields ("— Dana, 11 Feb" leaves "— ,") is no part of the text.
    lines = [line for line in text.split("\n") if not line or any(c.isalnum() for c in line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _drop_keeping_tail(element: Any) -> None:
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def content_id(author: str | None, day: str, body: str) -> str:
    """A stable id for a review the page gives none: author, day and text, case and spacing ignored."""
    key = "\x1f".join(((author or "").casefold(), day, " ".join(body.split()).casefold()))
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_markup(response: Response) -> TypeGuard[TextResponse]:
    """Only HTML/XML carries JSON-LD scripts or microdata; parsel refuses CSS on a JSON body."""
    return isinstance(response, TextResponse) and response.selector.type in ("html", "xml")


def _review_nodes(
    response: Response,
    on_problem: Callable[[str], None] | None = None,
    on_page_problem: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(syntax, Review object) for every review in the page's JSON-LD, then its microdata (as JSON-LD dicts).

    Microdata nested too deep or too large to read in bounded time is skipped (`repwatch/microdata_skipped`); the
    page's JSON-LD reviews are read all the same.
    """
    if not is_markup(response):
        return
    for raw in response.css('script[type="application/ld+json"]::text').getall():
        data = _load_json_ld(raw)
        if data is None:
            if on_problem:
                on_problem("schema_org/bad_json_ld")
            continue
        yield from (("json-ld", node) for node in _find_reviews(data))
    if "itemscope" in response.text:
        root = response.selector.root
        if not _microdata_within_limits(root):
            if on_page_problem:
                on_page_problem("microdata_skipped")
            return
        # Imported here: extruct pulls in mf2py and BeautifulSoup (~0.2 s at every crawl start, most never need it).
        from extruct.w3cmicrodata import MicrodataExtractor

        try:
            items = MicrodataExtractor(add_html_node=True).extract_items(root, response.url)
        except (ValueError, TypeError, AttributeError, RecursionError):
            if on_problem:
                on_problem("schema_org/bad_microdata")
            return
        yield from (("microdata", node) for node in _find_reviews([_from_microdata(item) for item in items]))


def _microdata_within_limits(root: Any) -> bool:
    """Whether extruct can read this tree's microdata in bounded time: items nested at most MAX_MICRODATA_DEPTH
    deep, and at most MAX_MICRODATA_WORK property comparisons (see there). One pass over the elements."""
    open_items: list[int] = []  # for each item being walked: how many properties had been seen when it opened
    properties = work = 0
    for event, element in etree.iterwalk(root, events=("start", "end"), tag=etree.Element):
        is_item = element.get("itemscope") is not None
        if event == "start":
            properties += element.get("itemprop") is not None  # a nested item is a property of the one around it
            if is_item:
                open_items.append(properties)
                if len(open_items) > MAX_MICRODATA_DEPTH:
                    return False
        elif is_item:
            work += (properties - open_items.pop()) ** 2
            if work > MAX_MICRODATA_WORK:
                return False
    return True


def _load_json_ld(raw: str) -> Any:
    text = _JSON_COMMENT_WRAPPERS.sub("", raw.strip())
    try:
        return json.loads(text, strict=False)  # strict=False: raw newlines inside strings are common
    except (ValueError, RecursionError):
        return None


def _find_reviews(data: Any) -> Iterator[dict[str, Any]]:
    """Depth-first walk (iterative: pages can nest deeply) yielding Review dicts in document order."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            if _types(node) & REVIEW_TYPES:
                yield node
                continue  # a review's own nested objects (itemReviewed...) are not reviews of this page
            stack.extend(reversed(list(node.values())))


def _types(node: dict[str, Any]) -> set[str]:
    types = node.get("@type")
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list):
        return set()
    # "Review", "schema:Review" and "https://schema.org/Review" are all the same type.
    return {re.split(r"[/#:]", t)[-1] for t in types if isinstance(t, str)}


def _from_microdata(item: Any) -> Any:
    """extruct's microdata item ({type, id, properties}) → the JSON-LD shape the walker reads."""
    if not isinstance(item, dict):
        return [_from_microdata(x) for x in item] if isinstance(item, list) else item
    if "properties" not in item and "value" in item:
        return item["value"]
    node: dict[str, Any] = {k: _from_microdata(v) for k, v in (item.get("properties") or {}).items()}
    if item.get("type"):
        node["@type"] = item["type"]
        if _types(node) & REVIEW_TYPES and item.get("htmlNode") is not None:
            node[_ELEMENT] = item["htmlNode"]
    if item.get("id"):
        node["@id"] = item["id"]
    return node


def _first(value: Any) -> Any:
    while isinstance(value, list):
        value = value[0] if value else None
    return value


def _name(value: Any) -> str | None:
    """author / inLanguage: a string, or an object with a name, or a list of either (first one)."""
    value = _first(value)
    if isinstance(value, dict):
        value = _first(value.get("name")) or _first(value.get("alternateName"))
    return value if isinstance(value, str) else None


def _identifier(node: dict[str, Any]) -> str | None:
    for key in ("@id", "url", "identifier"):
        value = _first(node.get(key))
        if isinstance(value, dict):  # PropertyValue
            value = _first(value.get("value")) or _first(value.get("@id"))
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            if str(value).startswith("_:"):
                continue  # a blank-node id is made up afresh by every serialisation
            return str(value).strip()
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = re.search(r"-?\d+(?:[.,]\d+)?", value)
        if not match:
            return None
        number = float(match.group().replace(",", "."))
    else:
        return None
    return number if number == number and abs(number) != float("inf") else None
