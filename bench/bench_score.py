"""Score-stage benchmarks and calibration: throughput, where the time goes, memory, per-language thresholds.

    .venv/bin/python bench/bench_score.py               # speed + memory, one model thread (stars, VADER, model)
    .venv/bin/python bench/bench_score.py --calibrate   # per-language thresholds on the labelled reviews, 2-fold CV
    .venv/bin/python bench/bench_score.py --evaluate    # `repwatch eval` on the labelled reviews: lexicon vs model
                                                        # (neg vs pos, 3★ left out; then --with-neutral's measure)
    .venv/bin/python bench/bench_score.py --truncation  # F1/AUC and speed against the model's character cap
    .venv/bin/python bench/bench_score.py --fit-anchors # refit monitor/sentiment/anchor_head.json after editing anchors

Reads ../shared/fixtures/sentiment when present (developers' checkout); the speed run falls back to generated text.
Embeddings of the labelled reviews are cached in --cache (default /tmp/repwatch-bench-cache) so that calibration
and evaluation runs after the first take seconds; speed runs never use that cache.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.sentiment import Scorer, TextInput  # noqa: E402
from monitor.sentiment import multilingual  # noqa: E402
from monitor.sentiment.evaluate import _auc, evaluate, format_report  # noqa: E402
from monitor.sentiment.model import EmbeddingCache, TextModel  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "sentiment"
LANGS = ("en", "pl", "ro", "el", "de")
MIN_PRECISION = 0.70


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


def rate(label: str, count: int, wall: float, cpu: float | None = None) -> None:
    per_cpu = f" {count / cpu:>8.1f}/CPU-s" if cpu else ""
    print(f"{label:<52} {count:>6} in {wall:6.2f} s = {count / wall:>8.1f}/s{per_cpu}   peak RSS {peak_rss_mb():.0f} MB")


def median_length_reviews(count: int) -> list[str]:
    """`count` real reviews around the median length of all the labelled reviews (else generated ones)."""
    texts = [r["text"] for lang in LANGS for r in load(lang)]
    if not texts:
        return generated_reviews(count)
    median = statistics.median(len(t) for t in texts)
    return sorted(texts, key=lambda t: (abs(len(t) - median), t))[:count]


def bench_speed(threads: int) -> None:
    print(f"start: peak RSS {peak_rss_mb():.0f} MB; model threads {threads}")
    scorer = Scorer(threads=threads)  # no file cache: every text below is new to it, as in a crawl
    stars = [TextInput(text="whatever the text says", stars=float(1 + i % 5)) for i in range(50_000)]
    started = time.perf_counter()
    scorer.score_many(stars)
    rate("stars path (no model touched)", len(stars), time.perf_counter() - started)
    complaints = [TextInput(text="Loved it, five stars.", stars=5.0)] * 5_000
    started = time.perf_counter()
    scorer.score_many(complaints)
    rate("stars path with text, complaint-cue screen", len(complaints), time.perf_counter() - started)

    english = [r["text"] for r in load("en")] or generated_reviews(750)
    scorer.english.score("Warm up.")
    started = time.perf_counter()
    for text in english:
        scorer.english.score(text, "en")
    rate("English lexicon layer (VADER per sentence)", len(english), time.perf_counter() - started)

    started = time.perf_counter()
    scorer.detector.load()
    scorer.text_scorer()
    rate("load: lingua + model + anchor head", 1, time.perf_counter() - started)
    print(f"  after loading: peak RSS {peak_rss_mb():.0f} MB")

    texts = median_length_reviews(120)
    chars = statistics.median(len(t) for t in texts)
    model = scorer.model
    assert model is not None
    print(f"\n{len(texts)} reviews of median length ({chars:.0f} characters), cold cache, {threads} thread(s):")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    langs = [scorer.detector.detect(t) for t in texts]
    detect = (time.perf_counter() - wall0, time.process_time() - cpu0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    embedded = model.embed(texts)
    embed = (time.perf_counter() - wall0, time.process_time() - cpu0)
    text_scorer = scorer.text_scorer()
    assert text_scorer is not None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = text_scorer.text_scores(texts)  # the embeddings are in the memory cache now: the head alone
    head = (time.perf_counter() - wall0, time.process_time() - cpu0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    readings = text_scorer.read(texts)  # the whole texts are cached now: this is their sentences' embeddings
    verdicts = [text_scorer.verdict(t, lang, r) for t, lang, r in zip(texts, langs, readings)]
    why = (time.perf_counter() - wall0, time.process_time() - cpu0)
    negatives = sum(v.label == "neg" for v in verdicts)
    read = sum(r.s <= multilingual.SENTENCE_GATE for r in results)
    for name, (wall, cpu) in (("language detection", detect), ("model (embedding, truncated)", embed),
                              ("head + thresholds (cached embeddings)", head),
                              (f"sentences of the {read} on the negative side ({negatives} negative)", why)):  # fmt: skip
        rate(f"  {name}", len(texts), wall, cpu)
    total_wall = detect[0] + embed[0] + head[0] + why[0]
    total_cpu = detect[1] + embed[1] + head[1] + why[1]
    rate("  total text path", len(texts), total_wall, total_cpu)
    assert embedded.shape == (len(texts), 384)
    started = time.perf_counter()
    scorer.score_many([TextInput(t) for t in texts])
    rate("  the same reviews again (cache hits)", len(texts), time.perf_counter() - started)
    print(f"\npeak RSS {peak_rss_mb():.0f} MB (lingua + VADER + model + {len(texts)} texts)")


# --- calibration -------------------------------------------------------------------------------------------


def fixture_scores(cache: Path, max_chars: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """{lang: (s = p(pos) − p(neg), probabilities, gold labels)} for every labelled review, text only."""
    kwargs = {"max_chars": max_chars} if max_chars else {}
    model = TextModel(threads=2, cache=EmbeddingCache(0, cache / "sentiment" / "embeddings.sqlite"), **kwargs)
    scorer = multilingual.MultilingualScorer(model)
    out = {}
    for lang in LANGS:
        records = load(lang)
        if not records:
            continue
        started = time.perf_counter()
        readings = scorer.read([r["text"] for r in records])  # the same fused score as the live scorer's
        proba = np.array([[x.score.p_neg, x.score.p_neu, x.score.p_pos] for x in readings])
        print(f"  {lang}: {len(records)} reviews read in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        out[lang] = (proba[:, 2] - proba[:, 0], proba, [r["label"] for r in records])
    return out


def prf(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    tp = int(np.sum(predicted & gold))
    fp = int(np.sum(predicted & ~gold))
    fn = int(np.sum(~predicted & gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def best_threshold(s: np.ndarray, gold: np.ndarray) -> float:
    """The neg threshold on s with the best F1 whose precision is at least MIN_PRECISION (else the best F1)."""
    candidates = np.round(np.arange(-0.6, 0.61, 0.01), 2)
    scored = [(prf(s <= t, gold), t) for t in candidates]
    allowed = [x for x in scored if x[0][0] >= MIN_PRECISION] or scored
    best = max(x[0][2] for x in allowed)
    # the middle of the thresholds within 0.005 F1 of the best: a plateau, not a spike
    near = [t for (p, r, f), t in allowed if f >= best - 0.005]
    return float(np.median(near))


def shrunk(own: float, pooled: float) -> float:
    """Half way between a language's own threshold and the pooled one: these files are not the owner's reviews."""
    return round((own + pooled) / 2, 2)


def calibrate(cache: Path) -> None:
    data = fixture_scores(cache)
    if not data:
        sys.exit(f"no fixtures at {FIXTURES}")
    gold = {lang: np.array([g == "neg" for g in labels]) for lang, (_, _, labels) in data.items()}
    rng = np.random.default_rng(0)
    folds = {lang: rng.permutation(len(gold[lang])) % 2 for lang in data}
    print("\nneg threshold on s = p(pos) − p(neg); 2-fold CV: thresholds chosen on one half, measured on the other")
    print(f"{'lang':<5} {'before: argmax P/R/F1':>24} {'CV: own':>16} {'CV: shrunk':>16} {'AUC':>6} {'ship':>6}")
    pooled_all = best_threshold(np.concatenate([d[0] for d in data.values()]), np.concatenate(list(gold.values())))
    bands = {}
    for lang, (s, proba, _) in data.items():
        y = gold[lang]
        before = prf(np.argmax(proba, axis=1) == 0, y)
        own_cv, shrunk_cv = [], []
        for fold in (0, 1):
            train, test = folds[lang] != fold, folds[lang] == fold
            pooled = best_threshold(np.concatenate([data[k][0][folds[k] != fold] for k in data]),
                                    np.concatenate([gold[k][folds[k] != fold] for k in data]))  # fmt: skip
            own = best_threshold(s[train], y[train])
            own_cv.append((s[test] <= own, y[test]))
            shrunk_cv.append((s[test] <= shrunk(own, pooled), y[test]))
        own_prf = prf(np.concatenate([p for p, _ in own_cv]), np.concatenate([g for _, g in own_cv]))
        shrunk_prf = prf(np.concatenate([p for p, _ in shrunk_cv]), np.concatenate([g for _, g in shrunk_cv]))
        ship = shrunk(best_threshold(s, y), pooled_all)
        while prf(s <= ship, y)[0] < MIN_PRECISION and ship > -0.5:  # shrinking must not cost the precision floor
            ship = round(ship - 0.01, 2)
        bands[lang] = ship
        auc = _auc([(bool(g), -float(v)) for g, v in zip(y, s)])
        print(f"{lang:<5} {'%.2f/%.2f/%.3f' % before:>24} {'%.2f/%.2f/%.3f' % own_prf:>16} "
              f"{'%.2f/%.2f/%.3f' % shrunk_prf:>16} {auc:>6.3f} {ship:>+6.2f}")  # fmt: skip
    print(f"pooled neg threshold (languages without their own): {pooled_all:+.2f}")
    # The pos edge: where neutral and positive reviews part, on the files that have neutral reviews.
    have_neu = [lang for lang, (_, _, labels) in data.items() if labels.count("neu") >= 30]
    best_pos, best_macro = None, -1.0
    for step in range(-20, 61, 2):
        edge = step / 100
        f1s = []
        for lang in have_neu:
            s, _, labels = data[lang]
            neg_at = bands[lang]
            predicted = np.where(s <= neg_at, "neg", np.where(s >= max(edge, neg_at + 0.02), "pos", "neu"))
            for cls in ("neu", "pos"):
                f1s.append(prf(predicted == cls, np.array(labels) == cls)[2])
        if np.mean(f1s) > best_macro:
            best_pos, best_macro = edge, float(np.mean(f1s))
    print(f"pos edge (best mean F1 of neu and pos on {', '.join(have_neu)}): {best_pos:+.2f} ({best_macro:.3f})")
    print("\nfor the language packs (monitor/languages/<code>.yaml):")
    for lang, neg in bands.items():
        print(f"  {lang}.yaml: band: {{neg: {neg:.2f}, pos: {max(best_pos, neg + 0.05):.2f}}}")
    print(f"DEFAULT_BAND = Band(neg={pooled_all:.2f}, pos={max(best_pos, pooled_all + 0.05):.2f})")


def truncation(cache: Path) -> None:
    """F1 (pooled threshold, CV) and AUC per language against the cap, and the engine's speed on one core."""
    texts = median_length_reviews(60)
    for cap in (300, 450, 600, 1000, 4000):
        data = fixture_scores(cache, max_chars=cap)
        model = TextModel(threads=1, cache=EmbeddingCache(0), max_chars=cap)
        model.load()
        started = time.process_time()
        model.embed(texts)
        speed = len(texts) / (time.process_time() - started)
        parts = []
        for lang, (s, _, labels) in data.items():
            y = np.array([g == "neg" for g in labels])
            auc = _auc([(bool(g), -float(v)) for g, v in zip(y, s)])
            parts.append(f"{lang} AUC {auc:.3f} F1 {prf(s <= best_threshold(s, y), y)[2]:.3f}")
        print(f"cap {cap:>5}: {speed:5.1f} median reviews/CPU-s | " + " | ".join(parts), flush=True)


def fit_anchors() -> None:
    model = TextModel(threads=2)
    head = multilingual.write_anchor_head(model)
    print(f"wrote {multilingual.ANCHOR_HEAD} ({head.info})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--truncation", action="store_true")
    parser.add_argument("--fit-anchors", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="model threads for the speed run (default 1)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/repwatch-bench-cache"))
    args = parser.parse_args()
    if args.fit_anchors:
        fit_anchors()
    elif args.calibrate:
        calibrate(args.cache)
    elif args.truncation:
        truncation(args.cache)
    elif args.evaluate:
        paths = [FIXTURES / f"{lang}.jsonl" for lang in LANGS if (FIXTURES / f"{lang}.jsonl").exists()]
        print("lexicon layer only (no model; English by VADER, the rest unscored), language detected:")
        print(format_report(evaluate(paths, scorer=Scorer(model=False))))
        # data_dir only for the embedding cache file: speed here is not the point (see the speed run)
        scorer = Scorer(threads=2, data_dir=args.cache)
        print("\nmultilingual model, language detected:\n" + format_report(evaluate(paths, scorer=scorer)))
        print("\nthe same, the older measure (neutral reviews count as not negative):\n"
              + format_report(evaluate(paths, scorer=scorer, with_neutral=True)))
        print(f"\npeak RSS {peak_rss_mb():.0f} MB")
    else:
        bench_speed(args.threads)


if __name__ == "__main__":
    main()
