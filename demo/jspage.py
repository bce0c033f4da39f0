"""A review page built by JavaScript: an empty HTML shell whose inline script fetches JSON and writes schema.org microdata."""
from __future__ import annotations

import html
import math

from demo.sitegen import SiteReview, _human_date, _utc, script_json

__all__ = ["js_data_path", "js_page_path", "js_review_pages"]

# Runs in the browser. Everything is built with DOM calls and textContent, never innerHTML, so a review body that
# contains markup stays text. The data arrives by fetch() after `load`: a crawler must wait for the network to
# settle, not just for the load event. Each review's itemid is its own permalink (stable across pages).
_BUILD_SCRIPT = """
(function () {
  var list = document.getElementById('reviews');
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function meta(prop, value) { return el('meta', {itemprop: prop, content: String(value)}); }
  fetch(list.getAttribute('data-src')).then(function (r) { return r.json(); }).then(function (data) {
    list.textContent = '';
    data.reviews.forEach(function (r) {
      var card = el('article', {'class': 'review', itemscope: '', itemtype: 'https://schema.org/Review',
                                itemid: new URL('/reviews/' + r.id, location.href).href});
      card.appendChild(el('h3', {itemprop: 'name'}, r.title));
      var author = el('span', {itemprop: 'author', itemscope: '', itemtype: 'https://schema.org/Person'});
      author.appendChild(el('span', {itemprop: 'name'}, r.author));
      card.appendChild(author);
      card.appendChild(el('time', {itemprop: 'datePublished', datetime: r.published}, r.published_text));
      if (r.rating !== null) {
        var rating = el('div', {itemprop: 'reviewRating', itemscope: '', itemtype: 'https://schema.org/Rating'});
        rating.appendChild(meta('ratingValue', r.rating));
        rating.appendChild(meta('bestRating', 5));
        rating.appendChild(meta('worstRating', 1));
        card.appendChild(rating);
      }
      card.appendChild(el('p', {itemprop: 'reviewBody'}, r.body));
      card.appendChild(meta('inLanguage', r.language));
      list.appendChild(card);
    });
    if (data.next) {
      document.getElementById('pager').appendChild(el('a', {rel: 'next', href: data.next}, 'Older reviews'));
    }
  });
})();
"""


def js_page_path(base: str, page: int) -> str:
    """Path of page `page` of the HTML shells: `base`, then `base?page=N`."""
    return base if page <= 1 else f"{base}?page={page}"


def js_data_path(base: str, page: int) -> str:
    """Path of the JSON the shell of page `page` fetches."""
    return f"/api{base}/{page}.json"


def js_review_pages(name: str, reviews: list[SiteReview], *, base: str = "/reviews", per_page: int = 10) -> dict[str, bytes]:
    """Path → body for every shell and JSON file, newest reviews first.

    Without running the script a shell holds no review at all (no JSON-LD, no microdata, no review text); rendered,
    each shell holds its page's reviews as schema.org microdata and a `rel=next` link to the next shell.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    ordered = sorted(reviews, key=lambda r: _utc(r.published_at), reverse=True)
    total = max(1, math.ceil(len(ordered) / per_page))
    pages: dict[str, bytes] = {}
    for page in range(1, total + 1):
        chunk = ordered[(page - 1) * per_page : page * per_page]
        data = {
            "reviews": [
                {
                    "id": r.id, "title": r.title, "author": r.author, "rating": r.rating, "body": r.body,
                    "language": r.language, "published": _utc(r.published_at).isoformat(timespec="seconds"),
                    "published_text": _human_date(r.published_at),
                }
                for r in chunk
            ],
            "next": js_page_path(base, page + 1) if page < total else None,
        }
        pages[js_data_path(base, page)] = script_json(data).encode()
        pages[js_page_path(base, page)] = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{html.escape(name)}: reviews</title>'
            f'</head><body><header><img src="/img/logo.png" alt="{html.escape(name)}"/></header><main><h1>What our guests say</h1>'
            f'<section id="reviews" data-src="{html.escape(js_data_path(base, page))}"><p>Loading reviews…</p></section>'
            f'<nav id="pager"></nav></main><script>{_BUILD_SCRIPT}</script></body></html>'
        ).encode()
    return pages
