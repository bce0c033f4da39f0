"""A small classification head over the embeddings: multinomial logistic regression in numpy, saved as .npz."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.files import private_dir, private_opener

from .verdict import NEG, NEU, POS

CLASSES = (NEG, NEU, POS)


@dataclass
class Head:
    """p(neg|neu|pos) = softmax(x·W + b); `info` says what it was fitted on (shown by `repwatch train`)."""

    weights: np.ndarray  # (dim, 3)
    bias: np.ndarray  # (3,)
    info: dict = field(default_factory=dict)

    def proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.asarray(x, dtype=np.float32) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path, **arrays: np.ndarray) -> None:
        """Write the head (and any extra named arrays) to an .npz file, atomically."""
        private_dir(path.parent)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb", opener=private_opener) as file:
            named: dict[str, np.ndarray] = {"weights": self.weights, "bias": self.bias,
                                             "info": np.array(json.dumps(self.info)), **arrays}
            np.savez(file, **named)  # type: ignore[arg-type]  # numpy's stub reads ** as its allow_pickle flag
        tmp.replace(path)  # a crawl reading it meanwhile sees the old head or the new one, never half of one

    @classmethod
    def load(cls, path: Path) -> Head:
        with np.load(path, allow_pickle=False) as data:
            weights, bias = data["weights"].astype(np.float32), data["bias"].astype(np.float32)
            info = json.loads(str(data["info"]))
        if weights.ndim != 2 or weights.shape[1] != len(CLASSES) or bias.shape != (len(CLASSES),):
            raise ValueError(f"{path}: not a {len(CLASSES)}-class head (weights {weights.shape})")
        return cls(weights, bias, info)


def fit(
    x: np.ndarray,
    labels: Sequence[str],
    *,
    l2: float = 1e-3,
    sample_weight: np.ndarray | None = None,
    steps: int = 400,
    info: dict | None = None,
) -> Head:
    """Fit by full-batch gradient descent with Adam: a few hundred 384-dim rows train in well under a second.

    Classes are weighted to balance them (an owner labels more of what they see most); a class with no example
    keeps a bias low enough that it is never predicted.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.array([CLASSES.index(label) for label in labels])
    n, dim = x.shape
    onehot = np.zeros((n, len(CLASSES)))
    onehot[np.arange(n), y] = 1.0
    counts = onehot.sum(axis=0)
    class_weight = np.where(counts > 0, n / (len(CLASSES) * np.maximum(counts, 1)), 0.0)
    weight = class_weight[y] * (sample_weight if sample_weight is not None else 1.0)
    weight = weight / weight.sum()
    w = np.zeros((dim, len(CLASSES)))
    b = np.where(counts > 0, 0.0, -10.0)
    # Embeddings are unit vectors with small components: a large step size and many steps, decaying.
    m_w = np.zeros_like(w), np.zeros_like(w)
    m_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, rate, eps = 0.9, 0.999, 0.1, 1e-8
    for step in range(1, steps + 1):
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        error = (p - onehot) * weight[:, None]
        grad_w = x.T @ error + l2 * w
        grad_b = error.sum(axis=0) * (counts > 0)
        for param, grad, (m1, m2) in ((w, grad_w, m_w), (b, grad_b, m_b)):
            m1 *= beta1
            m1 += (1 - beta1) * grad
            m2 *= beta2
            m2 += (1 - beta2) * grad * grad
            lr = rate / (1 + step / 100)
            param -= lr * (m1 / (1 - beta1**step)) / (np.sqrt(m2 / (1 - beta2**step)) + eps)
    return Head(w.astype(np.float32), b.astype(np.float32), dict(info or {}, n=int(n),
                counts={c: int(k) for c, k in zip(CLASSES, counts)}))  # fmt: skip
