"""Generic spider for a site described in config.yaml: CSS or XPath selectors for each review field, no code."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from cssselect import SelectorError
from lxml import etree
from parsel import Selector, SelectorList
from parsel.csstranslator import css2xpath
from pydantic import ConfigDict, Field, field_validator
from scrapy.http import Response

from spiders.base import ReviewSpider, SourceOptions
from spiders.generic.schema_org import content_id, is_markup
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import (
    clean_line,
    clean_text,
    html_to_text,
    parse_datetime,
    to_utc,
)

_NUMBER = r"\d+(?:[.,]\d+)?"


def is_xpath(selector: str) -> bool:
    """Selectors that start with / or ./ are XPath; everything else is CSS."""
    return selector.startswith(("/", "./"))


def compile_selector(selector: str) -> str:
    """The XPath a selector stands for; ValueError with a readable reason when it is not a valid selector."""
    selector = selector.strip()
    if not selector:
        raise ValueError("is empty: give a CSS selector, or an XPath starting with / or ./")
    if is_xpath(selector):
        xpath = selector
    else:
        try:
            xpath = css2xpath(selector)
        except SelectorError as error:
            raise ValueError(
                f"not a valid CSS selector ({selector!r}): {error} (selectors starting with / or ./ are XPath)"
            ) from None
    try:
        etree.XPath(xpath)
    except etree.XPathError as error:
        raise ValueError(f"not a valid XPath ({selector!r}): {error}") from None
    return xpath


class SelectorOptions(SourceOptions):
    """Where each review field is on the page: `review` selects each review; the others are read inside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review: str = Field(description="each review's container (CSS, or XPath starting with / or ./)")
    body: str = Field(description="the review text, inside the container")
    id: str | None = Field(None, description="the review's own id; without one, a hash of author, date and text")
    author: str | None = None
    rating: str | None = Field(None, description="text or attribute holding the rating")
    rating_pattern: str | None = Field(
        None, description="regex for the rating: its first group is the value, a second group the scale"
    )
    rating_scale: float = Field(5, gt=0, description="the best rating on the site's scale (10 for 8/10)")
    title: str | None = None
    date: str | None = None
    date_format: str | None = Field(None, description="strptime pattern for the date, e.g. %d.%m.%Y; else ISO or free text")
    reply: str | None = Field(None, description="the business's reply, inside the container")
    next: str | None = Field(None, description="the next page's link, anywhere on the page")

    @field_validator("review", "body", "id", "author", "rating", "title", "date", "reply", "next")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        if value is not None:
            compile_selector(value)
        return value.strip() if value is not None else None

    @field_validator("review")
    @classmethod
    def _selects_elements(cls, value: str) -> str:
        last_step = compile_selector(value).rsplit("/", 1)[-1]
        if last_step.startswith("@") or last_step.replace(" ", "") == "text()":
            raise ValueError(f"must select elements (the review containers), not text or attributes: {value!r}")
        return value

    @field_validator("rating_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            pattern = re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression ({value!r}): {error}") from None
        if pattern.groups > 2:
            raise ValueError(f"has {pattern.groups} groups; use one for the value and optionally a second for the scale")
        return value

    @field_validator("date_format")
    @classmethod
    def _valid_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"is not a strptime pattern (no % directive): {value!r}; e.g. %d.%m.%Y %H:%M")
        return value


class SelectorsSpider(ReviewSpider):
    """Any site whose reviews are in its HTML, described in config.yaml with CSS or XPath selectors, no code.

    `review` selects each review (required); the fields are read inside it: `body` (required), `id`, `author`,
    `rating`, `title`, `date`, `reply`; `next` is the next page's link anywhere on the page. A selector that starts
    with / or ./ is XPath, anything else CSS; CSS may end with ::text or ::attr(name). A selector that picks
    elements reads their text. Without `id`, a review's id is a hash of its author, date and text. The rating is
    the first number found, or the first group of `rating_pattern` (a second group is the scale), mapped from
    `rating_scale` (default 5) to 1-5. The date is read with `date_format` (strptime) if given, else as ISO or
    free text; dates without a zone are taken as UTC. Invalid selectors are reported by `repwatch config check`.

    Example source in config.yaml:

        - name: kettle-guestbook
          kind: selectors
          url: https://kettle-corner.example/guestbook
          options:
            review: article.entry
            id: ./@data-entry
            author: .who::text
            rating: span.score::text
            rating_pattern: (\\d+)/(\\d+)
            title: h3
            body: div.text
            date: time::attr(datetime)
            reply: div.owner-answer
            next: a.older::attr(href)
    """

    name = "selectors"
    site_name = "Configured selectors"
    Options = SelectorOptions
    options: SelectorOptions

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        if not is_markup(response):
            return
        page_url = response.url.split("#", 1)[0]
        yield from self.read_each(
            _select(response.selector, self.options.review), lambda container: self._review(container, page_url)
        )

    def next_page(self, response: Response) -> str | None:
        if not self.options.next or not is_markup(response):
            return None
        found = _select(response.selector, self.options.next)
        if not found:
            return None
        first = found[0]
        href = first.attrib.get("href") if not isinstance(first.root, str) else first.get()
        if not href or not href.strip():
            return None
        url = response.urljoin(href.strip())
        return None if url.split("#", 1)[0] == response.url.split("#", 1)[0] else url

    def _review(self, container: Selector, page_url: str) -> ReviewItem | None:
        options = self.options
        body = _text(container, options.body)
        author = _line(container, options.author)
        title = _line(container, options.title)
        rating = self._rating(_line(container, options.rating)) if options.rating else None
        published = self._date(_line(container, options.date)) if options.date else None
        if not body and rating is None and not title:
            self.problem("selectors/empty_review")  # a container that matched something else
            return None
        review_id = _line(container, options.id) if options.id else None
        if options.id and not review_id:
            self.problem("selectors/missing_id")
        if not review_id:
            review_id = content_id(author, published.date().isoformat() if published else "", body)
        reply_body = _text(container, options.reply) if options.reply else ""
        return ReviewItem(
            external_id=review_id,
            url=page_url,
            body=body,
            rating=rating,
            author=author,
            title=title,
            published_at=published,
            reply=Reply(body=reply_body) if reply_body else None,
            snippet_hash=snippet_hash(container.get()),
        )

    def _rating(self, text: str | None) -> float | None:
        if not text:
            self.problem("selectors/missing_rating")
            return None
        pattern = self.options.rating_pattern
        match = re.search(pattern or _NUMBER, text)
        if not match:
            self.problem("selectors/bad_rating")
            return None
        groups = [g for g in match.groups() if g is not None] if pattern else []
        try:
            value = float((groups[0] if groups else match.group()).replace(",", "."))
            scale = float(groups[1].replace(",", ".")) if len(groups) > 1 else self.options.rating_scale
            rating = value * 5 / scale
        except (ValueError, ZeroDivisionError):
            rating = 0.0
        if not 1 <= round(rating, 6) <= 5:
            self.problem("selectors/bad_rating")
            return None
        return round(rating, 2)

    def _date(self, text: str | None) -> datetime | None:
        if not text:
            self.problem("selectors/missing_date")
            return None
        parsed: datetime | None
        if self.options.date_format:
            try:
                parsed = to_utc(datetime.strptime(text, self.options.date_format))
            except ValueError:
                parsed = None
        else:
            parsed = parse_datetime(text)
        if parsed is None:
            self.problem("selectors/bad_date")
        return parsed


def _select(node: Selector, selector: str) -> SelectorList[Selector]:
    return node.xpath(selector) if is_xpath(selector) else node.css(selector)


def _pieces(node: Selector, selector: str | None) -> tuple[list[str], bool]:
    """The text of what a selector picks (strings as they are, elements as their text), and whether it picked
    elements."""
    if not selector:
        return [], False
    texts = []
    elements = False
    for found in _select(node, selector):
        if isinstance(found.root, str):
            texts.append(clean_text(found.root))
        else:
            elements = True
            texts.append(html_to_text(found.get()))
    return [text for text in texts if text], elements


def _text(node: Selector, selector: str | None) -> str:
    """Paragraphs: picked elements are separated by a blank line, picked text nodes (split by <br>) by a newline."""
    texts, elements = _pieces(node, selector)
    return ("\n\n" if elements else "\n").join(texts)


def _line(node: Selector, selector: str | None) -> str | None:
    return clean_line(" ".join(_pieces(node, selector)[0]))

