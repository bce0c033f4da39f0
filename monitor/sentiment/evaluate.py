"""Measure the scorer on labelled JSON Lines ({"text", "label", "stars"?}): per-language P/R/F1 for neg, AUC, speed.

The headline question is the owner's: does a 1-2★ review's text come out negative, and a 4-5★ one's not? 3★ ("neu")
reviews are left out of P/R/F1 (most carry a concrete complaint an owner would answer, see
../shared/fixtures/sentiment/README.md) and the share of them flagged negative is reported beside it.
`with_neutral=True` gives the older measure (3★ counted as "not negative").
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from .scorer import NOT_UNICODE, Scorer, is_unicode
from .verdict import LABELS, NEG, NEU, POS, TextInput

GOLD_LABELS = (NEG, NEU, POS)


def evaluate(
    paths: Sequence[Path],
    *,
    scorer: Scorer | None = None,
    use_stars: bool = False,
    given_lang: bool = False,
    with_neutral: bool = False,
) -> dict:
    """Score each file (named <lang>.jsonl) and compare with its labels; `neg` is the positive class.

    Stars are hidden unless `use_stars`; the language is detected unless `given_lang` (then the file name's).
    Returns {lang: {measure, n, precision, recall, f1, neutral_flagged, auc, confusion, unscored, lang_agreement,
    reviews_per_s, reviews_per_cpu_s}}: P/R/F1 and AUC on neg vs pos reviews (neu left out) unless `with_neutral`.
    Unscored reviews count as "not neg"; the AUC ranks the scored ones by -score. reviews_per_cpu_s is the
    process's CPU time (all threads), steadier than wall time on a shared machine. Raises LabelledFileError naming
    the file and line of every line that is not a labelled review.
    """
    labelled: dict[Path, list[dict]] = {}
    problems: list[str] = []
    for path in map(Path, paths):  # every file read before the model loads: a bad line fails at once
        try:
            labelled[path] = read_labelled(path)
        except LabelledFileError as exc:
            problems += exc.problems
    if problems:
        raise LabelledFileError(problems)
    scorer = scorer or Scorer()
    if hasattr(scorer, "warm_up"):
        scorer.warm_up()  # reviews/s should measure scoring, not loading
    results: dict[str, dict] = {}
    for path, records in labelled.items():
        lang = path.stem
        inputs = [
            TextInput(
                text=record.get("text") or "",
                stars=record.get("stars") if use_stars else None,
                lang=lang if given_lang else None,
            )
            for record in records
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        verdicts = scorer.score_many(inputs)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        gold = [record["label"] for record in records]
        results[lang] = _metrics(gold, verdicts, lang, with_neutral=with_neutral) | {
            "reviews_per_s": round(len(records) / elapsed, 1) if elapsed > 0 else None,
            "reviews_per_cpu_s": round(len(records) / cpu, 1) if cpu > 0 else None,
        }
    return results


class LabelledFileError(ValueError):
    """Lines of a labelled file that cannot be measured, one `FILE:LINE: problem` each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


MAX_PROBLEMS = 20  # per file: enough to see the pattern of a broken file


def read_labelled(path: Path) -> list[dict]:
    """The records of a labelled JSON Lines file; LabelledFileError naming the file and line of each bad one."""
    problems: list[str] = []
    records: list[dict] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        where = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise LabelledFileError([f"{path}:{where}: not UTF-8 text"]) from None
    for number, line in enumerate(text.split("\n"), start=1):  # lines as an editor counts them (not U+2028)
        if not line.strip():
            continue
        problem = _labelled_problem(line)
        if isinstance(problem, str):
            problems.append(f"{path}:{number}: {problem}")
        else:
            records.append(problem)
    if problems:
        more = [f"{path}: … and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS else []
        raise LabelledFileError(problems[:MAX_PROBLEMS] + more)
    return records


def _labelled_problem(line: str) -> dict | str:
    """The line's record, or what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    if not is_unicode(record):
        return NOT_UNICODE
    if record.get("label") not in GOLD_LABELS:
        got = f"got {record['label']!r}" if "label" in record else "it has none"
        return f'"label" must be neg, neu or pos; {got}'
    if not isinstance(record.get("text", ""), str | None):
        return '"text" must be a string'
    return record


MEASURES = {False: "neg vs pos (neu left out)", True: "neg vs neu+pos"}


def _metrics(gold: list[str], verdicts: list, lang: str, *, with_neutral: bool = False) -> dict:
    confusion = {g: {p: 0 for p in LABELS} for g in GOLD_LABELS}
    for truth, verdict in zip(gold, verdicts):
        confusion[truth][verdict.label] += 1
    counted = GOLD_LABELS if with_neutral else (NEG, POS)
    tp = confusion[NEG][NEG]
    fp = sum(confusion[g][NEG] for g in counted if g != NEG)
    fn = sum(confusion[NEG][p] for p in LABELS if p != NEG)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    scored = [(truth == NEG, -v.score) for truth, v in zip(gold, verdicts) if v.score is not None and truth in counted]
    neutral = sum(confusion[NEU].values())
    return {
        "measure": MEASURES[with_neutral],
        "n": len(gold),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "neutral": neutral,
        "neutral_flagged": round(confusion[NEU][NEG] / neutral, 4) if neutral else None,
        "auc": _auc(scored),
        "confusion": confusion,
        "unscored": sum(1 for v in verdicts if v.label == "unscored"),
        "lang_agreement": round(sum(1 for v in verdicts if v.lang == lang) / len(gold), 4) if gold else None,
    }


def _auc(pairs: list[tuple[bool, float]]) -> float | None:
    """Probability that a random negative review outranks a random other one (Mann-Whitney, ties count half)."""
    positives = sum(1 for is_neg, _ in pairs if is_neg)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return None
    ordered = sorted(pairs, key=lambda pair: pair[1])
    rank_sum, i = 0.0, 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][1] == ordered[i][1]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += average_rank * sum(1 for is_neg, _ in ordered[i:j] if is_neg)
        i = j
    return round((rank_sum - positives * (positives + 1) / 2) / (positives * negatives), 4)


def format_report(result: dict) -> str:
    """A plain-text table: one line per language, then each confusion matrix (rows: truth, columns: verdict)."""
    measures = sorted({m.get("measure", MEASURES[False]) for m in result.values()})
    lines = [f"P/R/F1 for negatives and AUC: {', '.join(measures)}; neu→neg: share of neutral (3★) flagged negative",
             f"{'lang':<5} {'n':>5} {'P(neg)':>7} {'R(neg)':>7} {'F1(neg)':>8} {'neu→neg':>8} {'AUC':>6} "
             f"{'unscored':>9} {'lang ok':>8} {'rev/s':>7} {'rev/CPU-s':>10}"]  # fmt: skip
    for lang, m in result.items():
        auc = f"{m['auc']:.3f}" if m["auc"] is not None else "-"
        agreement = f"{m['lang_agreement']:.1%}" if m["lang_agreement"] is not None else "-"
        speed = f"{m['reviews_per_s']:.0f}" if m.get("reviews_per_s") else "-"
        cpu_speed = f"{m['reviews_per_cpu_s']:.0f}" if m.get("reviews_per_cpu_s") else "-"
        flagged = f"{m['neutral_flagged']:.1%}" if m.get("neutral_flagged") is not None else "-"
        lines.append(f"{lang:<5} {m['n']:>5} {m['precision']:>7.3f} {m['recall']:>7.3f} {m['f1']:>8.3f} {flagged:>8} "
                     f"{auc:>6} {m['unscored']:>9} {agreement:>8} {speed:>7} {cpu_speed:>10}")  # fmt: skip
    for lang, m in result.items():
        lines.append("")
        lines.append(f"{lang}: truth \\ verdict " + " ".join(f"{p:>8}" for p in LABELS))
        for truth in GOLD_LABELS:
            lines.append(f"{'':<4}{truth:>16} " + " ".join(f"{m['confusion'][truth][p]:>8}" for p in LABELS))
    return "\n".join(lines)
