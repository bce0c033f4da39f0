"""Writers of review pages in real sites' structures (Trustpilot Next.js, schema.org JSON-LD, an Atom feed), filled with our own content."""
from __future__ import annotations

import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

__all__ = ["SiteReview", "trustpilot_pages", "trustpilot_path", "schema_org_page", "atom_feed", "script_json"]


@dataclass(slots=True)
class SiteReview:
    """One review as we want a generated site to show it (the expected output of extracting that site)."""

    id: str
    author: str
    rating: int | None
    title: str
    body: str
    published_at: datetime
    language: str = "en"
    reply_body: str | None = None
    reply_at: datetime | None = None
    country: str = "GB"
    url: str | None = None  # the page the review itself is on, where a feed links to it (see atom_feed)


# --- escaping -------------------------------------------------------------------------------------------

_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(data: object) -> str:
    """JSON safe to place inside <script>: `<`, `>`, `&` and U+2028/9 become \\u escapes, as Next.js does.

    `</script>` or `<!--` in a review body can then never end or confuse the script element, and the text still
    parses to the same JSON.
    """
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def _text(value: str) -> str:
    """Escaped element text; line breaks become <br/> the way Trustpilot renders them."""
    return html.escape(value, quote=True).replace("\r\n", "\n").replace("\n", "<br/>")


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC: the generator never guesses a local zone.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso_z(moment: datetime) -> str:
    """Trustpilot's format: 2025-05-02T18:15:54.000Z."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.") + f"{_utc(moment).microsecond // 1000:03d}Z"


def _human_date(moment: datetime) -> str:
    moment = _utc(moment)
    return f"{moment.strftime('%b')} {moment.day}, {moment.year}"


def _hex_id(*parts: str) -> str:
    """A stable 24-hex id (Trustpilot ids look like Mongo ObjectIds)."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


# --- Trustpilot -----------------------------------------------------------------------------------------

def trustpilot_path(domain: str, page: int) -> str:
    """Path of page `page` of a business's reviews: `/review/<domain>`, then `/review/<domain>?page=N`."""
    return f"/review/{domain}" if page <= 1 else f"/review/{domain}?page={page}"


def trustpilot_pages(
    domain: str,
    reviews: list[SiteReview],
    per_page: int = 20,
    relevant: list[SiteReview] | None = None,
    *,
    display_name: str | None = None,
    with_json_ld: bool = True,
) -> dict[str, bytes]:
    """Path → page for a Trustpilot-style business page and its paging, newest reviews first.

    Mirrors the 2024-2025 Next.js pages: `script#__NEXT_DATA__` (reviews, pagination, businessUnit), review cards
    selected by `data-*` attributes (class names are build hashes), a JSON-LD `@graph` without replies, and,
    when `relevant` is given, a "relevant reviews" block on every page that reuses the card marker (the trap:
    those cards are not this page's reviews).
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    for review in reviews:
        if review.rating not in (1, 2, 3, 4, 5):
            raise ValueError(f"Trustpilot reviews always have 1-5 stars; review {review.id!r} has {review.rating!r}")
    ordered = sorted(reviews, key=lambda r: _utc(r.published_at), reverse=True)
    total_pages = max(1, math.ceil(len(ordered) / per_page))
    business = _business_unit(domain, display_name or domain, ordered)
    pages: dict[str, bytes] = {}
    for page in range(1, total_pages + 1):
        chunk = ordered[(page - 1) * per_page : page * per_page]
        pages[trustpilot_path(domain, page)] = _trustpilot_page(
            domain, business, chunk, page, total_pages, per_page, len(ordered), relevant or [], with_json_ld
        ).encode("utf-8")
    return pages


def _business_unit(domain: str, name: str, reviews: list[SiteReview]) -> dict:
    counts = {n: sum(1 for r in reviews if r.rating == n) for n in range(1, 6)}
    average = sum(n * c for n, c in counts.items()) / len(reviews) if reviews else 0.0
    replied = [r for r in reviews if r.reply_body]
    return {
        "id": _hex_id("business", domain),
        "displayName": name,
        "identifyingName": domain,
        "numberOfReviews": len(reviews),
        "trustScore": round(average, 1),
        "websiteUrl": f"https://{domain}",
        "websiteTitle": domain,
        "profileImageUrl": "",
        "stars": round(average * 2) / 2,
        "categories": [{"id": "coffee_shop", "name": "Coffee Shop", "isPrimary": True}],
        "isClaimed": True,
        "isClosed": False,
        "activity": {
            "isClaimed": True,
            "replyBehavior": {"replyPercentage": round(100 * len(replied) / len(reviews)) if reviews else 0},
        },
        "ratings": {"one": counts[1], "two": counts[2], "three": counts[3], "four": counts[4], "five": counts[5]},
    }


def _review_json(review: SiteReview) -> dict:
    published = _utc(review.published_at)
    experienced = (published - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    consumer_id = _hex_id("consumer", review.author, review.id)
    return {
        "id": review.id,
        "filtered": False,
        "pending": False,
        "text": review.body,
        "rating": review.rating,
        "labels": {"merged": None, "verification": {"isVerified": False, "createdDateTime": _iso_z(published),
                                                    "reviewSourceName": "Organic", "verificationLevel": "not-verified"}},
        "title": review.title,
        "likes": 0,
        "source": "Organic",
        "dates": {
            "experiencedDate": _iso_z(experienced),
            "publishedDate": _iso_z(published),
            "updatedDate": None,
            "submittedDate": None,
        },
        "report": None,
        "hasUnhandledReports": False,
        "consumer": {
            "id": consumer_id,
            "displayName": review.author,
            "imageUrl": "",
            "numberOfReviews": 1 + int(consumer_id[:2], 16) % 7,
            "countryCode": review.country,
            "hasImage": False,
            "isVerified": False,
        },
        "reply": (
            {"message": review.reply_body, "publishedDate": _iso_z(review.reply_at or published), "updatedDate": None}
            if review.reply_body
            else None
        ),
        "consumersReviewCountOnSameDomain": 1,
        "productReviews": [],
        "language": review.language,
        "location": None,
    }


def _initials(name: str) -> str:
    letters = [part[0] for part in name.split() if part[:1].isalpha()]
    return "".join(letters[:2]).upper() or "?"


def _review_card(review: SiteReview, business_name: str) -> str:
    """One main-list card, attribute for attribute like the 2025 build (class names are our own hashes)."""
    consumer = _review_json(review)["consumer"]
    stars = review.rating
    reply = ""
    if review.reply_body:
        reply_at = review.reply_at or review.published_at
        reply = (
            '<div class="paper_paper__s5dnU card_card__9wCaq card_noPadding__PPhmx styles_wrapper__pLeGU">'
            '<div class="styles_content__xHqd2"><div class="styles_replyHeader__ndPiV"><div class="styles_replyInfo__EpTYH">'
            '<p class="typography_body-m__wizTE typography_appearance-default__yMGb5 typography_weight-heavy__ru8sX '
            f'styles_replyCompany__jng95" data-service-review-business-reply-title-typography="true">Reply from {_text(business_name)}</p>'
            f'<time dateTime="{_iso_z(reply_at)}" class="typography_body-s__nypE2 typography_appearance-default__yMGb5" '
            f'data-service-review-business-reply-date-time-ago="true">{_human_date(reply_at)}</time></div></div>'
            '<p class="typography_body-m__wizTE typography_appearance-default__yMGb5 styles_message__3CCSb" '
            f'data-service-review-business-reply-text-typography="true">{_text(review.reply_body)}</p></div></div>'
        )
    return (
        '<article class="paper_paper__s5dnU paper_square__dpskP card_card__9wCaq card_noPadding__PPhmx styles_reviewCard__v7JNg" '
        'data-service-review-card-paper="true"><div><div class="styles_reviewCardInnerHeader__YKgQB">'
        f'<aside class="styles_consumerInfoWrapper__kCgba" aria-label="Info for {_attr(review.author)}">'
        '<div class="styles_consumerDetailsWrapper__VptcX"><div class="avatar_avatar__GK9kf avatar_orange__8i5Ng" '
        f'data-consumer-avatar="true"><span class="typography_heading-xs__m696W avatar_avatarName__6LptE">{_text(_initials(review.author))}</span></div>'
        f'<a href="/users/{consumer["id"]}" rel="nofollow" name="consumer-profile" target="_self" '
        'class="link_internal__spvJt link_wrapper__tzxZK styles_consumerDetails__LBqMH" data-consumer-profile-link="true">'
        '<span class="typography_heading-xs__m696W typography_appearance-default__yMGb5" '
        f'data-consumer-name-typography="true">{_text(review.author)}</span>'
        f'<div class="styles_consumerExtraDetails__WrUuy" data-consumer-reviews-count="{consumer["numberOfReviews"]}">'
        '<span class="typography_body-m__wizTE typography_appearance-subtle__trTJz" '
        f'data-consumer-country-typography="true">{_text(review.country)}</span></div></a></div></aside>'
        f'<div class="typography_body-m__wizTE typography_appearance-subtle__trTJz"><time dateTime="{_iso_z(review.published_at)}" '
        f'class="" data-service-review-date-time-ago="true">{_human_date(review.published_at)}</time></div></div>'
        '<section class="styles_reviewContentwrapper__7iBN2" aria-disabled="false">'
        f'<div class="styles_reviewHeader__Z3fBY" data-service-review-rating="{stars}"><div class="star-rating_starRating__ErZDe '
        f'star-rating_medium__R33fW"><img alt="Rated {stars} out of 5 stars" src="/brand-assets/stars/stars-{stars}.svg"/></div></div>'
        '<div class="styles_reviewContent__GsU76" aria-hidden="false" data-review-content="true">'
        f'<a href="/reviews/{_attr(review.id)}" rel="nofollow" target="_self" class="link_internal__spvJt link_link__AaXNN '
        'link_notUnderlined__ZApKu" data-review-title-typography="true"><h2 class="typography_heading-xs__m696W '
        f'typography_appearance-default__yMGb5" data-service-review-title-typography="true">{_text(review.title)}</h2></a>'
        '<p class="typography_body-l__sQiBs typography_appearance-default__yMGb5" '
        f'data-service-review-text-typography="true">{_text(review.body)}</p></div></section>{reply}</div></article>'
    )


def _relevant_card(review: SiteReview) -> str:
    """A card of the 2025 "relevant reviews" block: same card marker, no permalink, different text attribute."""
    return (
        '<article data-service-review-card-paper="true" class="styles_reviewCard__8JtWb">'
        f'<aside class="styles_consumerInfoWrapper__kCgba" aria-label="Info for {_attr(review.author)}">'
        '<div class="styles_consumerDetailsWrapper__VptcX"><a href="/users/'
        f'{_hex_id("consumer", review.author, review.id)}" rel="nofollow" name="consumer-profile" '
        'class="link_internal__spvJt link_wrapper__tzxZK styles_consumerDetails__LBqMH" data-consumer-profile-link="true">'
        f'<span class="typography_heading-xs__m696W" data-consumer-name-typography="true">{_text(review.author)}</span>'
        f'<div class="styles_consumerExtraDetails__WrUuy"><span><time dateTime="{_iso_z(review.published_at)}" class="" '
        f'data-service-review-date-time-ago="true">{_human_date(review.published_at)}</time></span></div></a></div></aside>'
        f'<div class="styles_starRating__VCamW"><div class="star-rating_starRating__ErZDe star-rating_small__3pE7g">'
        f'<img alt="Rated {review.rating} out of 5 stars" src="/brand-assets/stars/stars-{review.rating}.svg"/></div></div>'
        '<p class="typography_body-l__sQiBs typography_appearance-default__yMGb5" data-relevant-review-text-typography="true">'
        f'<span class="styles_previewText__5y7QP">{_text(review.body)}</span></p></article>'
    )


_PAGE_LINK_CLASS = (
    "link_internal__spvJt button_button__MVem9 button_m__8yFSd button_appearance-outline__bZcHM "
    "button_squared__EnCnH link_button__YvWpq"
)


def _pagination(domain: str, page: int, total_pages: int) -> str:
    def link(kind: str, target: int | None, label: str, rel: str = "") -> str:
        if target is None:  # disabled: no href, as on the real first/last page
            return (
                f'<a tabindex="-1" aria-disabled="true" name="pagination-button-{kind}" target="_self" '
                f'class="{_PAGE_LINK_CLASS} link_disabled__8aMiw pagination-link_disabled__V6cdK pagination-link_{kind}__w8eh6" '
                f'data-pagination-button-{kind}-link="true"><span class="typography_heading-xxs__Pihuu">{label}</span></a>'
            )
        rel_attr = f' rel="{rel}"' if rel else ""
        return (
            f'<a href="{_attr(trustpilot_path(domain, target))}"{rel_attr} name="pagination-button-{kind}" target="_self" '
            f'class="{_PAGE_LINK_CLASS} pagination-link_{kind}__NdSsd" data-pagination-button-{kind}-link="true">'
            f'<span class="typography_heading-xxs__Pihuu">{label}</span></a>'
        )

    numbers = "".join(
        f'<a href="{_attr(trustpilot_path(domain, n))}" name="pagination-button-{n}" aria-label="Page number {n}" '
        f'class="{_PAGE_LINK_CLASS} pagination-link_item__D2WR5{" pagination-link_current__UH3Wm" if n == page else ""}" '
        f'data-pagination-button-{n}-link="true"><span class="typography_heading-xxs__Pihuu">{n}</span></a>'
        for n in range(max(1, page - 2), min(total_pages, page + 2) + 1)
    )
    return (
        '<div class="styles_pagination__ybQt6"><nav role="navigation" aria-label="Pagination" class="pagination_pagination___fiFy">'
        + link("previous", page - 1 if page > 1 else None, "Previous page", "prev")
        + numbers
        + link("next", page + 1 if page < total_pages else None, "Next page", "next")
        + "</nav></div>"
    )


_HEAD_BOILERPLATE = (
    '<meta charSet="UTF-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>'
    '<link rel="icon" href="/favicon.ico"/>'
    '<link rel="manifest" href="/site.webmanifest"/>'
    '<link rel="preload" href="/_next/static/css/6e1a2c0f3b7d.css" as="style"/>'
    '<link rel="stylesheet" href="/_next/static/css/6e1a2c0f3b7d.css" data-n-g=""/>'
    # Our own stand-in for the inline scripts real pages carry (the extractor must skip scripts that are not data).
    "<script>document.documentElement.dataset.demo='1';</script>"
    '<script defer="" nomodule="" src="/_next/static/chunks/polyfills-8a1312a7b52fe7d9.js"></script>'
    '<script src="/_next/static/chunks/webpack-8c1f0a3b27e1d2f4.js" defer=""></script>'
    '<script src="/_next/static/chunks/framework-0c7baedefba6b077.js" defer=""></script>'
    '<script src="/_next/static/chunks/main-5b2e0a54b8a2d4c3.js" defer=""></script>'
    '<script src="/_next/static/chunks/pages/_app-3f9d8e6b1c2a7d40.js" defer=""></script>'
    '<script src="/_next/static/chunks/pages/review/%5BbusinessUnit%5D-7e2f1c4d9a8b3e60.js" defer=""></script>'
)

_HEADER_NAV = (
    '<header class="styles_header__FyYp9"><div class="styles_headerInner___6PQL" data-navigation="true">'
    '<a href="/" name="company-logo" class="link_internal__spvJt link_wrapper__tzxZK styles_logo__BvLni" '
    'data-company-logo-link="true"><img alt="Reviews" width="140" src="/brand-assets/logo-white.svg"/></a>'
    '<div class="styles_midSection___jMHj"><form class="search-desktop_searchWithAutoComplete__u3DUC" autoComplete="off">'
    '<input class="search-desktop_searchInputField__yEeaX" placeholder="Search for a company or category…" name="query" '
    'type="search" data-header-search-field="true" value=""/></form></div><nav class="styles_nav__6z_ik">'
    '<ul class="styles_menu__sdD_g"><li><a href="/write-review" class="link_internal__spvJt styles_menuLink__zaUMq" '
    'data-write-review-link="true">Write a review</a></li><li><a href="/categories" class="link_internal__spvJt '
    'styles_menuLink__zaUMq">Categories</a></li><li><a href="/blog" class="link_internal__spvJt styles_menuLink__zaUMq">Blog'
    '</a></li><li><a href="/users/connect?redirect=%2F" rel="nofollow" class="link_internal__spvJt styles_menuLink__zaUMq" '
    'data-login-link="true">Log in</a></li><li><a href="https://business.example/" class="button_button__MVem9 '
    'button_appearance-primary__guzTG" data-business-link="true">For businesses</a></li></ul></nav></div></header>'
)

_FOOTER = (
    '<footer class="styles_footer__HvPiz" data-footer="true"><div class="styles_footerInner__bYspa">'
    '<div class="styles_languageSelector__GvXhT"><select name="language" data-language-selector="true">'
    '<option value="en-US" selected="">United States</option><option value="en-GB">United Kingdom</option>'
    '<option value="de-DE">Deutschland</option><option value="pl-PL">Polska</option></select></div>'
    '<nav class="styles_footerLinks__A9_4T"><h3>About</h3><ul><li><a href="/about">About us</a></li>'
    '<li><a href="/jobs">Jobs</a></li><li><a href="/contact">Contact</a></li><li><a href="/blog">Blog</a></li></ul>'
    '<h3>Community</h3><ul><li><a href="/trust">Trust in reviews</a></li><li><a href="/support">Help Center</a></li>'
    '<li><a href="/users/connect">Log in</a></li></ul><h3>Businesses</h3><ul><li><a href="https://business.example/">'
    'Products</a></li><li><a href="https://business.example/plans">Plans &amp; Pricing</a></li></ul></nav>'
    '<p class="typography_body-s__nypE2 styles_legal__VAbPp">© 2025 Example Reviews Ltd. All rights reserved. '
    'Pages generated by repwatch for testing; the businesses and reviews are invented.</p></div></footer>'
)


def _trustpilot_page(
    domain: str,
    business: dict,
    chunk: list[SiteReview],
    page: int,
    total_pages: int,
    per_page: int,
    total_count: int,
    relevant: list[SiteReview],
    with_json_ld: bool,
) -> str:
    name = business["displayName"]
    page_url = f"https://www.trustpilot.example/review/{domain}"
    next_data = {
        "props": {
            "pageProps": {
                "pageUrl": page_url,
                "businessUnit": business,
                "reviews": [_review_json(r) for r in chunk],
                "relevantReviews": [_review_json(r) for r in relevant],
                "products": [],
                "filters": {
                    "hasActiveFilters": False,
                    "totalNumberOfReviews": total_count,
                    "totalNumberOfFilteredReviews": total_count,
                    "pagination": {
                        "currentPage": page,
                        "perPage": per_page,
                        "totalCount": total_count,
                        "totalPages": total_pages,
                    },
                    "selected": {"languages": "all", "sort": "recency", "stars": None, "replies": False},
                },
                "noIndex": False,
                "relevanceSortingEnabled": bool(relevant),
            },
            "locale": "en-US",
            "__N_SSP": True,
        },
        "page": "/review/[businessUnit]",
        "query": {"businessUnit": domain, **({"page": str(page)} if page > 1 else {})},
        "buildId": "businessunitprofile-consumersite-2.3836.0",
        "isFallback": False,
        "gssp": True,
        "scriptLoader": [],
    }
    json_ld = ""
    if with_json_ld:
        graph = [
            {"@type": "LocalBusiness", "@id": f"{page_url}/#/schema/Organization/{domain}", "url": page_url,
             "name": name, "aggregateRating": {"@type": "AggregateRating", "bestRating": "5", "worstRating": "1",
                                               "ratingValue": str(business["trustScore"]),
                                               "reviewCount": str(total_count)}},
        ] + [
            {
                "@type": "Review",
                "@id": f"{page_url}/#/schema/Review/{domain}/{r.id}",
                "itemReviewed": {"@id": f"{page_url}/#/schema/Organization/{domain}"},
                "author": {"@type": "Person", "name": r.author},
                "datePublished": _iso_z(r.published_at),
                "headline": r.title,
                "reviewBody": r.body,
                "reviewRating": {"@type": "Rating", "bestRating": "5", "worstRating": "1", "ratingValue": str(r.rating)},
                "inLanguage": r.language,
            }
            for r in chunk
        ]
        json_ld = (
            '<script type="application/ld+json" data-business-unit-json-ld="true">'
            + script_json({"@context": "https://schema.org", "@graph": graph})
            + "</script>"
        )
    relevant_block = (
        '<div class="styles_relevantReviewsSection__hhjEb">' + "".join(_relevant_card(r) for r in relevant) + "</div>"
        if relevant
        else ""
    )
    cards = "".join(_review_card(r, name) for r in chunk)
    title_suffix = f" | customer reviews of {domain}" + (f" | {page} of {total_pages}" if page > 1 else "")
    return (
        f'<!DOCTYPE html><html lang="en-US"><head>{_HEAD_BOILERPLATE}'
        f"<title>{_text(name)} Reviews{_text(title_suffix)}</title>"
        f'<meta name="description" content="{total_count} customers have reviewed {_attr(name)} '
        f'({business["stars"]} stars). Read their reviews or write your own."/>'
        f'<link rel="canonical" href="{_attr(page_url + ("" if page == 1 else f"?page={page}"))}"/>{json_ld}</head>'
        '<body><div id="__next"><div class="theme-provider_themeProvider__yZrqn theme-provider_theme-default__pPEgC" '
        f'data-constellation-theme="default"><div class="layout_wrapper__GwSJk">{_HEADER_NAV}'
        '<main class="styles_main__mJwAE"><div class="styles_businessInformation__X_xSf" data-business-unit-info="true">'
        f'<h1 class="typography_default__R9EkG styles_header__cvHv5"><span class="title_displayName__qnS4U" '
        f'data-business-unit-name="true">{_text(name)}</span></h1><p data-reviews-count-typography="true">Reviews '
        f'{total_count}</p><p class="typography_body-l__sQiBs" data-rating-typography="true">{business["trustScore"]}</p>'
        f'<a href="https://{_attr(domain)}" rel="noopener" data-visit-website-button-link="true">{_text(domain)}</a></div>'
        '<section class="styles_reviewListContainer__NyS8i" data-nosnippet="false"><div class="styles_filtersContainer__YJp9y">'
        '<button type="button" data-filter-button="true" class="button_button__MVem9">Filter</button><button type="button" '
        'data-sort-button="true" class="button_button__MVem9">Most recent</button></div>'
        f"{relevant_block}{cards}{_pagination(domain, page, total_pages)}</section></main>{_FOOTER}</div></div></div>"
        f'<script id="__NEXT_DATA__" type="application/json">{script_json(next_data)}</script></body></html>'
    )


# --- schema.org -----------------------------------------------------------------------------------------

def schema_org_page(
    name: str,
    reviews: list[SiteReview],
    kind: str = "LocalBusiness",
    next_href: str | None = None,
    *,
    page_url: str = "",
) -> bytes:
    """A business or product page carrying its reviews as JSON-LD (`@graph` → `kind` → `review[]`).

    Reviews with `rating None` have no `reviewRating` (text-only reviews). `@id`s are `<page_url>#review-<id>`.
    The visible markup repeats the reviews without microdata, so the JSON-LD is the one structured copy.
    `next_href` adds `<link rel="next">` and a visible next link.
    """
    business_id = f"{page_url}#business"
    rated = [r.rating for r in reviews if r.rating is not None]
    entity: dict = {"@type": kind, "@id": business_id, "name": name, "url": page_url or None}
    if kind == "LocalBusiness":
        entity["address"] = {"@type": "PostalAddress", "streetAddress": "14 Harbour Lane", "addressLocality": "Porthallow",
                             "postalCode": "TR12 6PN", "addressCountry": "GB"}
        entity["priceRange"] = "££"
    if rated:
        entity["aggregateRating"] = {"@type": "AggregateRating", "ratingValue": round(sum(rated) / len(rated), 1),
                                     "reviewCount": len(rated), "bestRating": 5, "worstRating": 1}
    entity["review"] = []
    for review in reviews:
        node: dict = {
            "@type": "Review",
            "@id": f"{page_url}#review-{review.id}",
            "name": review.title,
            "author": {"@type": "Person", "name": review.author},
            "datePublished": _utc(review.published_at).isoformat(timespec="seconds"),
            "reviewBody": review.body,
            "inLanguage": review.language,
        }
        if review.rating is not None:
            node["reviewRating"] = {"@type": "Rating", "ratingValue": review.rating, "bestRating": 5, "worstRating": 1}
        entity["review"].append(node)
    graph = [{"@type": "WebPage", "@id": page_url or "#page", "name": f"{name} reviews", "about": {"@id": business_id}},
             {k: v for k, v in entity.items() if v is not None}]

    articles = []
    for review in reviews:
        stars = "★" * review.rating + "☆" * (5 - review.rating) if review.rating is not None else ""
        reply = (
            f'<div class="owner-reply"><strong>Response from the owner</strong><p>{_text(review.reply_body)}</p></div>'
            if review.reply_body
            else ""
        )
        articles.append(
            f'<article class="review" id="review-{_attr(review.id)}"><header><h3>{_text(review.title)}</h3>'
            f'<span class="stars" aria-label="{_attr(f"{review.rating} out of 5" if stars else "not rated")}">{stars}</span>'
            f'<span class="by">by {_text(review.author)}</span> <time datetime="{_utc(review.published_at).isoformat(timespec="seconds")}">'
            f"{_human_date(review.published_at)}</time></header><p>{_text(review.body)}</p>{reply}</article>"
        )
    next_head = f'<link rel="next" href="{_attr(next_href)}"/>' if next_href else ""
    next_link = f'<nav class="pager"><a rel="next" href="{_attr(next_href)}">Older reviews</a></nav>' if next_href else ""
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{_text(name)}: reviews</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"/>{next_head}'
        f'<script type="application/ld+json">{script_json({"@context": "https://schema.org", "@graph": graph})}</script>'
        f'</head><body><header class="site"><a href="/">{_text(name)}</a><nav><a href="/menu">Menu</a> '
        f'<a href="/visit">Visit us</a> <a href="/reviews">Reviews</a></nav></header><main><h1>What our guests say</h1>'
        f'<section class="reviews">{"".join(articles)}</section>{next_link}</main>'
        "<footer><p>Invented business, written for the repwatch demo.</p></footer></body></html>"
    )
    return page.encode("utf-8")


# --- Atom feed (Google Alerts) --------------------------------------------------------------------------------

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")  # no XML 1.0 document may hold these


def _xml(value: str) -> str:
    """Element text for XML: `&`, `<`, `>` escaped; characters XML 1.0 cannot carry at all dropped."""
    return xml_escape(_NOT_XML.sub("", value))


def _xml_attr(value: str) -> str:
    """A quoted XML attribute value (quotes, `&`, `<`, line breaks escaped)."""
    return quoteattr(_NOT_XML.sub("", value), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _highlighted(text: str, query: str) -> str:
    """HTML for `text` with `query` in bold, as Google Alerts shows the words it matched."""
    escaped = _text(text)
    return escaped.replace(_text(query), f"<b>{_text(query)}</b>") if query else escaped


def atom_feed(query: str, reviews: list[SiteReview], *, feed_url: str = "") -> bytes:
    """Posts that mention `query`, as a Google Alerts Atom feed: one `<entry>` a review, newest first.

    As Google's: the feed's title is `Google Alert - "<query>"`; an entry's id is
    `tag:google.com,2013:googlealerts/feed:<number>`; its link goes through `https://www.google.com/url?...&url=<the
    post>` (the post is `review.url`, else `<feed_url>#<review.id>`); title and text are HTML (`type="html"`),
    escaped inside the XML, with `query` in bold. There are no stars (a review's `rating` must be None) and no
    language: the reader has to detect it, and `review.language` is what it should find. Unlike Google's, whose
    `<author><name/></author>` is empty, an entry names its author when the review has one (as a Reddit or
    forum search feed does).
    """
    for review in reviews:
        if review.rating is not None:
            raise ValueError(f"a mentions feed has no stars; review {review.id!r} has {review.rating!r}")
    ordered = sorted(reviews, key=lambda r: _utc(r.published_at), reverse=True)
    updated = _iso_z(ordered[0].published_at) if ordered else "1970-01-01T00:00:00.000Z"
    entries = []
    for review in ordered:
        number = int(hashlib.sha1(review.id.encode()).hexdigest()[:15], 16)
        post = review.url or f"{feed_url}#{review.id}"
        link = (f"https://www.google.com/url?rct=j&sa=t&url={quote(post, safe=':/')}&ct=ga"
                f"&cd=CAIyGjk{number % 10_000:04d}&usg=AOvVaw{_hex_id('usg', review.id)[:16]}")
        when = _iso_z(review.published_at)
        author = f"<name>{_xml(review.author)}</name>" if review.author else "<name/>"
        entries.append(
            "  <entry>\n"
            f"    <id>tag:google.com,2013:googlealerts/feed:{number}</id>\n"
            f'    <title type="html">{_xml(_highlighted(review.title, query))}</title>\n'
            f"    <link href={_xml_attr(link)}/>\n"
            f"    <published>{when}</published>\n"
            f"    <updated>{when}</updated>\n"
            f'    <content type="html">{_xml(_highlighted(review.body, query))}</content>\n'
            f"    <author>{author}</author>\n"
            "  </entry>\n"
        )
    self_link = f'  <link href={_xml_attr(feed_url)} rel="self"/>\n' if feed_url else ""
    title = f'Google Alert - "{query}"'
    feed = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">\n'
        f"  <id>tag:google.com,2005:reference:{int(_hex_id('feed', query)[:15], 16)}</id>\n"
        f"  <title>{_xml(title)}</title>\n"
        f"{self_link}"
        f"  <updated>{updated}</updated>\n"
        + "".join(entries)
        + "</feed>\n"
    )
    return feed.encode("utf-8")
