"""Score-stage benchmarks and calibration: throughput, detector load time and memory, threshold sweeps.

    .venv/bin/python bench/bench_score.py              # speed + memory (stars path, English text, detection)
    .venv/bin/python bench/bench_score.py --calibrate  # sweep the English thresholds on the real labelled reviews
    .venv/bin/python bench/bench_score.py --evaluate   # per-language report on the labelled reviews (stars hidden)

Reads ../shared/fixtures/sentiment when present (developers' checkout); the speed runs fall back to generated text.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.sentiment import Scorer, TextInput  # noqa: E402
from monitor.sentiment.english import (  # noqa: E402
    NEG_AT_OR_BELOW,
    POS_AT_OR_ABOVE,
    EnglishScorer,
)
from monitor.sentiment.evaluate import evaluate, format_report  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "sentiment"
LANGS = ("en", "pl", "ro", "el", "de")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def load(lang: str) -> list[dict]:
    path = FIXTURES / f"{lang}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def generated_reviews(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    parts = ["The staff were lovely", "the room was dirty", "delivery took three weeks", "great value for money",
             "I would not recommend it", "the food was cold", "customer service never answered",
             "it works as described", "never again", "five stars from me"]  # fmt: skip
    return [". ".join(rng.choice(parts) for _ in range(rng.randint(2, 12))) + "." for _ in range(count)]


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<48} {count:>6} in {seconds:6.2f} s = {count / seconds:>9.0f}/s   peak RSS {peak_rss_mb():.0f} MB")


def bench_speed() -> None:
    print(f"start: peak RSS {peak_rss_mb():.0f} MB")
    scorer = Scorer()
    stars = [TextInput(text="whatever the text says", stars=float(1 + i % 5)) for i in range(50_000)]
    started = time.perf_counter()
    scorer.score_many(stars)
    rate("stars path (no model touched)", len(stars), time.perf_counter() - started)

    english = [r["text"] for r in load("en")] or generated_reviews(750)
    items = [TextInput(text=t, lang="en") for t in english]
    scorer.score_many(items[:5])  # VADER lexicon load is not throughput
    started = time.perf_counter()
    scorer.score_many(items)
    rate("English text, lang given (VADER per sentence)", len(items), time.perf_counter() - started)

    long_text = " ".join(generated_reviews(400))  # ~20,000 words: the cap keeps it cheap
    started = time.perf_counter()
    scorer.score(TextInput(text=long_text, lang="en"))
    rate(f"one {len(long_text.split())}-word English text (capped)", 1, time.perf_counter() - started)

    started = time.perf_counter()
    scorer.detector.load()
    rate("lingua detector load (low-accuracy mode)", 1, time.perf_counter() - started)
    mixed = [r["text"] for lang in LANGS for r in load(lang)] or generated_reviews(2000)
    started = time.perf_counter()
    for text in mixed:
        scorer.detector.detect(text)
    rate("language detection", len(mixed), time.perf_counter() - started)
    items = [TextInput(text=t) for t in mixed]
    started = time.perf_counter()
    scorer.score_many(items)
    rate("mixed languages, detect + score", len(items), time.perf_counter() - started)


def prf(predicted: list[bool], gold: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and g for p, g in zip(predicted, gold))
    fp = sum(p and not g for p, g in zip(predicted, gold))
    fn = sum(g and not p for p, g in zip(predicted, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def calibrate() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    records = load("en")
    if not records:
        sys.exit(f"no fixtures at {FIXTURES}")
    gold = [r["label"] == "neg" for r in records]
    whole = SentimentIntensityAnalyzer()
    before = prf([whole.polarity_scores(r["text"])["compound"] <= -0.05 for r in records], gold)
    print("BEFORE whole-text compound <= -0.05: P %.3f R %.3f F1 %.3f" % before)
    english = EnglishScorer()
    scored = [english.sentence_scores(r["text"]) for r in records]
    # A text with no sentiment-bearing sentence is neutral whatever the threshold (as EnglishScorer.score does).
    means = [s.mean if any(s.compounds) else float("nan") for s in scored]
    print(f"\nmean sentence compound (with review lexicon + phrases); shipped neg <= {NEG_AT_OR_BELOW:+.2f}")
    for step in range(-10, 31):
        threshold = step / 100
        p, r, f = prf([m <= threshold for m in means], gold)
        mark = " <- shipped" if abs(threshold - NEG_AT_OR_BELOW) < 1e-9 else ""
        print(f"  neg <= {threshold:+.2f}: P {p:.3f} R {r:.3f} F1 {f:.3f}{'' if p >= 0.70 else '  (P < 0.70)'}{mark}")
    print(f"\npos threshold sweep (neg <= {NEG_AT_OR_BELOW:+.2f}); shipped pos >= {POS_AT_OR_ABOVE:+.2f}")
    labels = [r["label"] for r in records]
    for step in range(20, 71, 5):
        threshold = step / 100
        predicted = ["neg" if m <= NEG_AT_OR_BELOW else "pos" if m >= threshold else "neu" for m in means]
        # NaN (no sentiment words) compares False both ways: neu
        f1s = []
        for cls in ("neg", "neu", "pos"):
            f1s.append(prf([p == cls for p in predicted], [g == cls for g in labels])[2])
        accuracy = sum(p == g for p, g in zip(predicted, labels)) / len(labels)
        print(f"  pos >= {threshold:+.2f}: F1 neg/neu/pos {f1s[0]:.3f}/{f1s[1]:.3f}/{f1s[2]:.3f} "
              f"macro {sum(f1s) / 3:.3f} accuracy {accuracy:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--evaluate", action="store_true")
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
    elif args.evaluate:
        paths = [FIXTURES / f"{lang}.jsonl" for lang in LANGS if (FIXTURES / f"{lang}.jsonl").exists()]
        print("language detected:\n" + format_report(evaluate(paths)))
        print("\nlanguage given:\n" + format_report(evaluate(paths, given_lang=True)))
        print(f"\npeak RSS {peak_rss_mb():.0f} MB")
    else:
        bench_speed()


if __name__ == "__main__":
    main()
