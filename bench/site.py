"""The benchmark's synthetic Trustpilot-style site: deterministic reviews paged with demo.sitegen."""
from __future__ import annotations

import argparse
import hashlib
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from demo.sitegen import SiteReview, trustpilot_pages, trustpilot_path

DOMAIN = "bench.example"
# A fixed "now" keeps every run's pages byte-identical (same ETags, same ids).
EPOCH = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)

_FIRST = "Anna Ben Carla Dev Ewa Femi Gosia Hugo Ines Jan Kemal Lena Mo Nora Otto Pia Rui Sara Tariq Uma".split()
_LAST = "Smith Nowak Müller Rossi Jones Kowalski Dubois Silva Okafor Berg Novak Costa Evans Popescu Lee".split()
_OPENERS = [
    "Ordered on a Monday and it arrived", "Second time using them and", "Customer service answered quickly and",
    "The checkout was simple and", "I was sceptical at first but", "Had a problem with the delivery and",
    "Prices are fair and", "Waited far too long and", "The product looked nothing like the photos and",
]
_MIDDLES = [
    "the parcel was well packed", "the refund took two weeks", "the staff were friendly and helpful",
    "the quality is better than expected", "nobody replied to my emails", "the size guide was accurate",
    "tracking updates stopped halfway", "the app kept logging me out", "they sent a replacement straight away",
]
_CLOSERS = [
    "Would recommend.", "Will order again.", "Not impressed.", "Avoid if you are in a hurry.",
    "Five stars from me.", "Could be better.", "Very happy overall.", "Disappointed this time.",
]
# Praise only (no complaint cue in any language pack: bench/site.py --check-share counts them), for the 4-5★
# reviews that the real pages' share of complaint-worded texts leaves plain.
_PRAISE = ["Arrived on time and well packed.", "Friendly staff and a quick reply.", "Exactly what I ordered.",
           "Great quality for the price.", "Easy checkout, fast shipping.", "Lovely product, thank you.",
           "Will order again.", "Five stars from me.", "Very happy overall.", "Would recommend."]
# Share of 4-5★ texts with a complaint cue, measured on the real pages in ../shared/fixtures/pages (6 of 149, 4 %;
# issue 19 found 2-7 %). The generator's own mix of phrases gives 68 %: `complaint_share=None` keeps that site.
REAL_COMPLAINT_SHARE = 0.04
_TITLES = ["Great service", "Terrible experience", "Okay", "Fast delivery", "Never again", "Good value",
           "Mixed feelings", "Brilliant", "Slow refund", "Exactly as described"]
_LANGS = [("en", "GB")] * 8 + [("de", "DE"), ("pl", "PL")]


def bench_reviews(count: int, seed: int = 2025, complaint_share: float | None = None) -> list[SiteReview]:
    """`count` reviews, newest first, one every ~37 minutes back from EPOCH; same seed → same reviews.

    `complaint_share`: the share of 4-5★ reviews written with the mixed phrases (the rest praise only); None: every
    review from the mixed phrases, as the site was before issue 19.
    """
    rng = random.Random(seed)
    reviews = []
    for n in range(count):
        lang, country = rng.choice(_LANGS)
        published = EPOCH - timedelta(minutes=37 * n + rng.randrange(30))
        has_reply = rng.random() < 0.2
        rating = rng.choice((1, 2, 3, 4, 5, 5, 5, 4))
        body = " ".join(f"{rng.choice(_OPENERS)} {rng.choice(_MIDDLES)}. {rng.choice(_CLOSERS)}"
                        for _ in range(rng.randint(1, 3)))  # fmt: skip
        if complaint_share is not None and rating >= 4 and rng.random() >= complaint_share:
            body = " ".join(rng.sample(_PRAISE, rng.randint(2, 4)))
        reviews.append(
            SiteReview(
                id=hashlib.sha1(f"bench-{seed}-{n}".encode()).hexdigest()[:24],
                author=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                rating=rating,
                title=rng.choice(_TITLES),
                body=body,
                published_at=published,
                language=lang,
                reply_body="Thank you for your feedback, we have passed it on to the team." if has_reply else None,
                reply_at=published + timedelta(hours=rng.randint(2, 72)) if has_reply else None,
                country=country,
            )
        )
    return reviews


def build_site(pages: int, per_page: int = 20, seed: int = 2025,
               complaint_share: float | None = REAL_COMPLAINT_SHARE) -> dict[str, bytes]:  # fmt: skip
    """Path → body of a `pages`-page business profile at /review/bench.example, `per_page` reviews a page."""
    return trustpilot_pages(DOMAIN, bench_reviews(pages * per_page, seed, complaint_share), per_page=per_page,
                            display_name="Bench Co")


def complaint_worded_share(reviews: list[SiteReview]) -> float:
    """The share of 4-5★ reviews whose text has a complaint cue (the ones the model reads in a crawl)."""
    from monitor.sentiment.cues import ComplaintCues

    cues = ComplaintCues()
    high = [r for r in reviews if r.rating >= 4]
    return sum(bool(cues.found(r.body, r.language)) for r in high) / max(1, len(high))


def start_path() -> str:
    return trustpilot_path(DOMAIN, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out", type=Path, help="write the pages as files under this directory")
    parser.add_argument("--complaint-share", type=float, default=REAL_COMPLAINT_SHARE,
                        help="share of 4-5★ reviews written with complaint words (negative: the old site's mix)")
    args = parser.parse_args()
    share = args.complaint_share if args.complaint_share >= 0 else None
    site = build_site(args.pages, args.per_page, args.seed, share)
    worded = complaint_worded_share(bench_reviews(args.pages * args.per_page, args.seed, share))
    print(f"4-5★ reviews with a complaint cue (read by the model): {worded:.1%}")
    sizes = [len(body) for body in site.values()]
    print(f"{len(site)} pages, {sum(sizes) / 1e6:.1f} MB, {sum(sizes) / len(sizes) / 1e3:.1f} KB a page on average")
    if args.out:
        for path, body in site.items():
            name = path.strip("/").replace("/", "_").replace("?", "_") + ".html"
            (args.out / name).parent.mkdir(parents=True, exist_ok=True)
            (args.out / name).write_bytes(body)


if __name__ == "__main__":
    main()
