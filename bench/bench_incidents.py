"""The incident linker's precision and recall on labelled pairs built from real reviews plus edit operations.

    .venv/bin/python -m bench.bench_incidents            # P/R/F1 at the shipped thresholds, and a threshold sweep
    .venv/bin/python -m bench.bench_incidents --seed 2   # another draw of edits and pairs
    .venv/bin/python -m bench.bench_incidents --fixtures /work/shared/fixtures/sentiment   # from a worktree

Positives: a real negative review (../shared/fixtures/sentiment/<lang>.jsonl, read here, never copied) and the same
complaint re-posted with edits: sentences re-ordered, one dropped or added, typos, case and punctuation changed, a
different title. Negatives: two different complaints of one business: the most similar other review of the same
language (the hardest case: same topic, same phrasing habits), another review that shares a complaint topic
(two late-delivery complaints), and a random one. Authors: the "text" run gives both posts a placeholder name
("A Google user"), so only the text can link; the "linker" run draws names the way sites show them (the same
person as "Jane Doe", "jane doe", "Jane D." or a nickname; different people with different names, a shared first
name alone, or both anonymous).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import incidents
from monitor.incidents import Post, match, shingles, similarity

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sentiment"
LANGUAGES = ("en", "de", "pl", "ro", "el")
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)

# Sentences a re-poster adds, and titles sites ask for: ours, per language family (English for all is realistic
# enough: the added sentence is noise the linker must tolerate).
ADDED = ["I am posting this everywhere until someone answers.", "Update: still no reply from the company.",
         "Do not make the same mistake I did.", "Nobody from the shop has contacted me since.",
         "I have photos of everything if anyone asks.", "Edit: two more days and still nothing."]
TITLES = ["Avoid!", "Terrible experience", "Never again", "Very disappointed", "Warning to other customers",
          "Worst service ever", "Not recommended", ""]
FIRST = ["Jane", "John", "Maria", "Piotr", "Ioana", "Giorgos", "Anna", "Lukas", "Sarah", "Andrei", "Eleni", "Tomasz"]
LAST = ["Doe", "Kowalski", "Popescu", "Papadopoulos", "Müller", "Smith", "Nowak", "Ionescu", "Schmidt", "Brown"]


@dataclass(frozen=True)
class Pair:
    same: bool
    kind: str  # what made it: the edit operations, or how the negative was picked
    a: Post
    b: Post


def load(fixtures: Path, language: str) -> list[str]:
    path = fixtures / f"{language}.jsonl"
    if not path.exists():
        return []
    seen: set[frozenset[str]] = set()
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("label") != "neg":
            continue
        key = shingles(item["text"])
        if key in seen:
            continue  # the sets hold a few duplicates; two copies of one text are not "different complaints"
        seen.add(key)
        texts.append(item["text"])
    return texts


def split_sentences(text: str) -> list[str]:
    parts, current = [], ""
    for char in text:
        current += char
        if char in ".!?\n":
            if current.strip():
                parts.append(current.strip())
            current = ""
    if current.strip():
        parts.append(current.strip())
    return parts


def typos(text: str, rng: random.Random, share: float = 0.05) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), k=max(1, int(len(words) * share))):
        word = words[i]
        if len(word) < 3:
            continue
        j = rng.randrange(len(word) - 1)
        op = rng.choice(("swap", "drop", "double"))
        if op == "swap":
            word = word[:j] + word[j + 1] + word[j] + word[j + 2:]
        elif op == "drop":
            word = word[:j] + word[j + 1:]
        else:
            word = word[:j] + word[j] + word[j:]
        words[i] = word
    return " ".join(words)


EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "reorder": lambda t, r: " ".join(r.sample(s := split_sentences(t), len(s))),
    "drop": lambda t, r: " ".join(s[:i] + s[i + 1:]) if len(s := split_sentences(t)) >= 3 and
    (i := r.randrange(len(s))) >= 0 else t,
    "add": lambda t, r: " ".join((s := split_sentences(t))[:(i := r.randrange(len(s) + 1))] + [r.choice(ADDED)] + s[i:]),
    "typos": typos,
    "case": lambda t, r: t.lower().replace(",", "").replace("!", "."),
}


def repost(text: str, rng: random.Random) -> tuple[str, str]:
    ops = rng.sample(sorted(EDITS), k=rng.randint(1, 3))
    for op in ops:
        text = EDITS[op](text, rng)
    return text, "+".join(sorted(ops))


def titled(text: str, rng: random.Random) -> str:
    title = rng.choice(TITLES)
    return f"{title}. {text}" if title else text


def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def same_person_names(rng: random.Random) -> tuple[str, str]:
    first, last = person(rng)
    return rng.choice([
        (f"{first} {last}", f"{first} {last}"), (f"{first} {last}", f"{first.lower()} {last.upper()}"),
        (f"{first} {last}", f"{first} {last[0]}."), (f"{first} {last}", f"{first.lower()}{rng.randint(1, 99)}"),
        (f"{first} {last}", "A Google user"), ("Anonymous", "Anonymous"),
    ])


def other_people_names(rng: random.Random) -> tuple[str, str]:
    (f1, l1), (f2, l2) = person(rng), person(rng)
    if (f1, l1) == (f2, l2):
        l2 = next(name for name in LAST if name != l1)
    return rng.choice([
        (f"{f1} {l1}", f"{f2} {l2}"), (f1, f1), (f"{f1} {l1}", f"{f1} {l2[0]}."), ("A Google user", "A Google user"),
        ("Anonymous", "Anonymous"), ("", ""),
    ])


def pairs(fixtures: Path, rng: random.Random, *, with_names: bool) -> list[Pair]:
    from monitor.topics import TopicMatcher

    topics = TopicMatcher.from_config(None)  # the built-in complaint topics: two complaints about one thing
    made: list[Pair] = []
    ids = iter(range(1, 10**9))

    def post(text: str, author: str, hours: float) -> Post:
        return Post(next(ids), 1, NOW - timedelta(hours=hours), author, text)

    for language in LANGUAGES:
        texts = load(fixtures, language)
        if len(texts) < 2:
            continue
        sets = [shingles(t) for t in texts]
        found = [set(topics.topics(t, language)) for t in texts]
        for i, text in enumerate(texts):
            names = same_person_names(rng) if with_names else ("A Google user", "A Google user")
            edited, ops = repost(text, rng)
            made.append(Pair(True, ops, post(titled(text, rng), names[0], 0), post(titled(edited, rng), names[1], 30)))
            # the hardest negative: the other review whose words overlap most
            j = max((k for k in range(len(texts)) if k != i), key=lambda k: similarity(sets[i], sets[k]).jaccard)
            sharing = [k for k in range(len(texts)) if k != i and found[i] & found[k]]
            picks = [("nearest", j), ("random", rng.choice([k for k in range(len(texts)) if k != i]))]
            if sharing:
                picks.append(("same topic", rng.choice(sharing)))
            for kind, k in picks:
                names = other_people_names(rng) if with_names else ("A Google user", "A Google user")
                made.append(Pair(False, kind, post(titled(text, rng), names[0], 0),
                                 post(titled(texts[k], rng), names[1], 30)))
    return made


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: bool, said: bool) -> None:
        if truth and said:
            self.tp += 1
        elif said:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        return (f"P {self.precision:.3f}  R {self.recall:.3f}  F1 {self.f1:.3f}  "
                f"(tp {self.tp}, fp {self.fp}, fn {self.fn}, tn {self.tn})")


def sweep(made: list[Pair]) -> None:
    """Text rule only, at other thresholds: containment × Jaccard, and the shingles in common."""
    sims = [(p.same, similarity(p.a.words, p.b.words)) for p in made]
    print("\nthreshold sweep (text alone): containment ≥ c and Jaccard ≥ j, at least m shingles in common")
    print(f"{'c':>5} {'j':>5} {'m':>3}  result")
    for minimum in (4, 7, 10):
        for c in (0.3, 0.4, 0.5, 0.6, 0.7):
            for j in (0.1, 0.2, 0.3, 0.4):
                score = Score()
                for same, s in sims:
                    score.add(same, s.shared >= minimum and s.containment >= c and s.jaccard >= j)
                print(f"{c:5.2f} {j:5.2f} {minimum:3d}  {score.line()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="the labelled reviews (<lang>.jsonl)")
    args = parser.parse_args(argv)
    if not args.fixtures.exists():
        print(f"skipped: no labelled reviews at {args.fixtures}", file=sys.stderr)
        return 0
    print(f"thresholds: containment ≥ {incidents.TEXT_CONTAINMENT}, Jaccard ≥ {incidents.TEXT_JACCARD}, "
          f"≥ {incidents.MIN_SHARED} shingles of {incidents.SHINGLE_WORDS} words in common; fitting name + "
          f"containment ≥ {incidents.NAME_SUPPORT_CONTAINMENT}, Jaccard ≥ {incidents.NAME_SUPPORT_JACCARD}")
    text_pairs: list[Pair] = []
    for with_names in (False, True):
        made = pairs(args.fixtures, random.Random(args.seed), with_names=with_names)
        if not with_names:
            text_pairs = made
        overall = Score()
        by_kind: dict[str, Score] = {}
        for p in made:
            said = match(p.b, p.a) is not None
            overall.add(p.same, said)
            kind = p.kind if not p.same else ("re-post, " + ("several edits" if "+" in p.kind else p.kind))
            by_kind.setdefault(kind, Score()).add(p.same, said)
        title = "linker with names" if with_names else "text alone (both authors anonymous)"
        print(f"\n{title}: {sum(p.same for p in made)} same-complaint pairs, "
              f"{sum(not p.same for p in made)} different-complaint pairs")
        print(f"  all: {overall.line()}")
        for kind, score in sorted(by_kind.items()):
            shown = f"recall {score.recall:.3f} ({score.tp}/{score.tp + score.fn})" if score.tp + score.fn else \
                f"false links {score.fp}/{score.fp + score.tn}"
            print(f"  {kind:<28} {shown}")
    if not args.no_sweep:
        sweep(text_pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
