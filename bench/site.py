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
_TITLES = ["Great service", "Terrible experience", "Okay", "Fast delivery", "Never again", "Good value",
           "Mixed feelings", "Brilliant", "Slow refund", "Exactly as described"]
_LANGS = [("en", "GB")] * 8 + [("de", "DE"), ("pl", "PL")]


def bench_reviews(count: int, seed: int = 2025) -> list[SiteReview]:
    """`count` reviews, newest first, one every ~37 minutes back from EPOCH; same seed → same reviews."""
    rng = random.Random(seed)
    reviews = []
    for n in range(count):
        lang, country = rng.choice(_LANGS)
        published = EPOCH - timedelta(minutes=37 * n + rng.randrange(30))
        has_reply = rng.random() < 0.2
        reviews.append(
            SiteReview(
                id=hashlib.sha1(f"bench-{seed}-{n}".encode()).hexdigest()[:24],
                author=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                rating=rng.choice((1, 2, 3, 4, 5, 5, 5, 4)),
                title=rng.choice(_TITLES),
                body=" ".join(
                    f"{rng.choice(_OPENERS)} {rng.choice(_MIDDLES)}. {rng.choice(_CLOSERS)}"
                    for _ in range(rng.randint(1, 3))
                ),
                published_at=published,
                language=lang,
                reply_body="Thank you for your feedback, we have passed it on to the team." if has_reply else None,
                reply_at=published + timedelta(hours=rng.randint(2, 72)) if has_reply else None,
                country=country,
            )
        )
    return reviews


def build_site(pages: int, per_page: int = 20, seed: int = 2025) -> dict[str, bytes]:
    """Path → body of a `pages`-page business profile at /review/bench.example, `per_page` reviews a page."""
    return trustpilot_pages(DOMAIN, bench_reviews(pages * per_page, seed), per_page=per_page,
                            display_name="Bench Co")


def start_path() -> str:
    return trustpilot_path(DOMAIN, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out", type=Path, help="write the pages as files under this directory")
    args = parser.parse_args()
    site = build_site(args.pages, args.per_page, args.seed)
    sizes = [len(body) for body in site.values()]
    print(f"{len(site)} pages, {sum(sizes) / 1e6:.1f} MB, {sum(sizes) / len(sizes) / 1e3:.1f} KB a page on average")
    if args.out:
        for path, body in site.items():
            name = path.strip("/").replace("/", "_").replace("?", "_") + ".html"
            (args.out / name).parent.mkdir(parents=True, exist_ok=True)
            (args.out / name).write_bytes(body)


if __name__ == "__main__":
    main()
