"""The embedded examples behind `shapeflow example` and the README's first command.

- The embedded model: a small transformer encoder (ONNX, symbolic `batch` and `seq`) shipped as package
  data in `shapeflow/data/encoder.onnx`. `examples/make_encoder_onnx.py` writes it with
  `transformer_encoder_onnx()` below; the benchmarks and end-to-end tests build larger or smaller variants
  of the same graph with the same function, so what ships is what is tested.
- The DESIGN.md kernel (`shapeflow example --kernel`): B[i] = sum_k exp(A[i, k]) over a symbolic number of
  rows. One build serves every row count; each run is checked against numpy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

import numpy as np

import shapeflow as sf
from shapeflow import te
from shapeflow.errors import CompileError

ENCODER_FILE = Path(__file__).parent / "data" / "encoder.onnx"
# The embedded encoder's shape: what make_encoder_onnx.py passes to transformer_encoder_onnx.
ENCODER_CONFIG = {"hidden": 64, "heads": 4, "ffn": 256, "layers": 2, "seed": 0}
# Bounds the embedded example compiles with (`shapeflow compile --example` without --dim).
ENCODER_DIMS = {"batch": (1, 32), "seq": (1, 256)}


def embedded_model_path() -> Path:
    """The shipped encoder.onnx; CompileError when the package was installed without its data."""
    if not ENCODER_FILE.is_file():
        raise CompileError(
            f"the embedded model {ENCODER_FILE} is missing (regenerate it with examples/make_encoder_onnx.py)"
        )
    return ENCODER_FILE


# -- the ONNX transformer encoder ------------------------------------------------------------------------


class _GraphWriter:
    """Collects ONNX nodes and initializers with unique names (onnx.helper does the proto work)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def weight(self, hint: str, shape, scale: float | None = None, value: np.ndarray | None = None) -> str:
        from onnx import numpy_helper  # noqa: PLC0415

        if value is None:
            fan_in = shape[0] if len(shape) > 1 else 1
            std = scale if scale is not None else 1.0 / np.sqrt(fan_in)
            value = (self.rng.standard_normal(shape) * std).astype(np.float32)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def const(self, hint: str, value) -> str:
        return self.weight(hint, None, value=np.asarray(value))

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        from onnx import helper  # noqa: PLC0415

        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _gelu_erf(g: _GraphWriter, x: str) -> str:
    """GELU as torch.onnx exports it before opset 20: 0.5 * x * (1 + erf(x / sqrt(2)))."""
    scaled = g.op("Div", [x, g.const("sqrt2", np.float32(np.sqrt(2.0)))])
    one_plus = g.op("Add", [g.op("Erf", [scaled]), g.const("one", np.float32(1.0))])
    return g.op("Mul", [g.op("Mul", [x, one_plus]), g.const("half", np.float32(0.5))])


def _gelu_tanh(g: _GraphWriter, x: str) -> str:
    """GPT-2's GELU: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""
    cube = g.op("Pow", [x, g.const("three", np.float32(3.0))])
    inner = g.op("Add", [x, g.op("Mul", [cube, g.const("c", np.float32(0.044715))])])
    t = g.op("Tanh", [g.op("Mul", [inner, g.const("k", np.float32(np.sqrt(2.0 / np.pi)))])])
    one_plus = g.op("Add", [t, g.const("one", np.float32(1.0))])
    return g.op("Mul", [g.op("Mul", [x, one_plus]), g.const("half", np.float32(0.5))])


def _linear(g: _GraphWriter, x: str, n_in: int, n_out: int, hint: str) -> str:
    w = g.weight(f"{hint}_w", (n_in, n_out))
    b = g.weight(f"{hint}_b", (n_out,), scale=0.02)
    return g.op("Add", [g.op("MatMul", [x, w]), b], hint)


def _layer_norm(g: _GraphWriter, x: str, hidden: int, hint: str) -> str:
    gamma = g.weight(f"{hint}_gamma", None, value=(1.0 + 0.1 * g.rng.standard_normal(hidden)).astype("f4"))
    beta = g.weight(f"{hint}_beta", (hidden,), scale=0.1)
    return g.op("LayerNormalization", [x, gamma, beta], hint, axis=-1, epsilon=1e-5)


def _attention(g: _GraphWriter, x: str, hidden: int, heads: int, causal_mask: str | None) -> str:
    head_dim = hidden // heads
    split = g.const("split_heads", np.array([0, 0, heads, head_dim], "int64"))

    def heads_first(t: str, perm: list[int]) -> str:
        return g.op("Transpose", [g.op("Reshape", [t, split])], perm=perm)

    q = heads_first(_linear(g, x, hidden, hidden, "q"), [0, 2, 1, 3])
    k = heads_first(_linear(g, x, hidden, hidden, "k"), [0, 2, 3, 1])
    v = heads_first(_linear(g, x, hidden, hidden, "v"), [0, 2, 1, 3])
    scores = g.op("MatMul", [q, k])
    scores = g.op("Mul", [scores, g.const("scale", np.float32(1.0 / np.sqrt(head_dim)))])
    if causal_mask is not None:
        scores = g.op("Add", [scores, causal_mask])
    probs = g.op("Softmax", [scores], axis=-1)
    context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged = g.op("Reshape", [context, g.const("merge_heads", np.array([0, 0, hidden], "int64"))])
    return _linear(g, merged, hidden, hidden, "attn_out")


def _causal_mask(g: _GraphWriter, x: str) -> str:
    """A (seq, seq) additive mask built from the input's shape, the way GPT-2 exports compute it:
    Shape -> Gather(seq) -> Range -> compare -> Where(0, -1e4)."""
    shape = g.op("Shape", [x])
    seq = g.op("Gather", [shape, g.const("seq_axis", np.array(1, "int64"))], axis=0)
    positions = g.op(
        "Range", [g.const("zero", np.array(0, "int64")), seq, g.const("one", np.array(1, "int64"))]
    )
    rows = g.op("Unsqueeze", [positions, g.const("axis1", np.array([1], "int64"))])
    cols = g.op("Unsqueeze", [positions, g.const("axis0", np.array([0], "int64"))])
    allowed = g.op("GreaterOrEqual", [rows, cols])
    return g.op(
        "Where", [allowed, g.const("keep", np.float32(0.0)), g.const("masked", np.float32(-1e4))], "mask"
    )


def transformer_encoder_onnx(
    hidden: int = 64,
    heads: int = 4,
    ffn: int = 256,
    layers: int = 2,
    seed: int = 0,
    causal: bool = False,
    vocab: int | None = None,
    pre_norm: bool = False,
    gelu: str = "erf",
    opset: int = 17,
):
    """A transformer encoder as an onnx.ModelProto with symbolic dims "batch" and "seq": post-norm with
    erf GELU (BERT-like) by default; `causal=True, pre_norm=True, gelu="tanh"` makes GPT-2-like decoder
    blocks (a causal mask computed from the input's shape, LayerNorm before each sublayer and at the end).

    Input "x": float32 (batch, seq, hidden) hidden states, or with `vocab`, "input_ids": int64 (batch, seq)
    looked up in a word embedding plus a position embedding indexed by Range(seq). Output "y": float32
    (batch, seq, hidden). Weights are random from `seed` (deterministic)."""
    from onnx import TensorProto, helper  # noqa: PLC0415

    if hidden % heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
    g = _GraphWriter(seed)
    dims = ["batch", "seq"]
    if vocab is None:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*dims, hidden])]
        x = "x"
    else:
        inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims)]
        words = g.op("Gather", [g.weight("word_embedding", (vocab, hidden), scale=0.5), "input_ids"])
        x = g.op("Add", [words, _position_embedding(g, "input_ids", hidden)], "embeddings")
    mask = _causal_mask(g, x) if causal else None
    activation = {"erf": _gelu_erf, "tanh": _gelu_tanh}[gelu]
    for _ in range(layers):
        if pre_norm:
            x = g.op("Add", [x, _attention(g, _layer_norm(g, x, hidden, "ln_1"), hidden, heads, mask)])
            h = activation(g, _linear(g, _layer_norm(g, x, hidden, "ln_2"), hidden, ffn, "ffn_in"))
            x = g.op("Add", [x, _linear(g, h, ffn, hidden, "ffn_out")])
            continue
        x = _layer_norm(g, g.op("Add", [x, _attention(g, x, hidden, heads, mask)]), hidden, "ln_attn")
        h = activation(g, _linear(g, x, hidden, ffn, "ffn_in"))
        x = _layer_norm(g, g.op("Add", [x, _linear(g, h, ffn, hidden, "ffn_out")]), hidden, "ln_ffn")
    if pre_norm:
        x = _layer_norm(g, x, hidden, "ln_final")
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name="output"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*dims, hidden])]
    kind = "decoder" if causal else "encoder"
    graph = helper.make_graph(g.nodes, f"transformer_{kind}", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="shapeflow"
    )
    model.ir_version = 8
    return model


def _position_embedding(g: _GraphWriter, ids: str, hidden: int, max_positions: int = 512) -> str:
    table = g.weight("position_embedding", (max_positions, hidden), scale=0.5)
    shape = g.op("Shape", [ids])
    seq = g.op("Gather", [shape, g.const("seq_axis", np.array(1, "int64"))], axis=0)
    positions = g.op(
        "Range", [g.const("zero", np.array(0, "int64")), seq, g.const("one", np.array(1, "int64"))]
    )
    return g.op("Gather", [table, positions], "positions")


# -- the DESIGN.md kernel --------------------------------------------------------------------------------


def make_rowsum_module(columns: int = 1024) -> sf.ir.IRModule:
    n = te.var("n")
    A = te.placeholder((n, columns), "float32", name="A")
    k = te.reduce_axis((0, columns), name="k")
    B = te.compute((n,), lambda i: te.sum(te.exp(A[i, k]), axis=k), name="B")
    return sf.ir.IRModule({"rowsum": te.create_prim_func([A, B])})


def run_example(sizes: list[int], out: TextIO) -> int:
    mod = make_rowsum_module()
    text = mod.script()
    if not sf.ir.structural_equal(sf.ir.parse(text), mod):
        raise CompileError("the example module does not survive a print/parse round trip")
    start = time.perf_counter()
    lib = sf.build(mod, target="cpu")
    build_s = time.perf_counter() - start
    print(f"built 'rowsum' (symbolic n) for the host CPU in {build_s * 1000:.0f} ms", file=out)
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, 1024), dtype=np.float32)
        b = np.empty(n, "float32")
        lib["rowsum"](a, b)
        expected = np.exp(a.astype(np.float64)).sum(axis=1)
        err = float(np.max(np.abs(b - expected) / np.abs(expected)))
        reps = max(1, min(200, 2_000_000 // (n * 1024)))
        t0 = time.perf_counter()
        for _ in range(reps):
            lib["rowsum"](a, b)
        per_call = (time.perf_counter() - t0) / reps
        status = "ok" if err < 1e-4 else "WRONG"
        print(f"  n={n:<6d} max rel err {err:.1e} [{status}]  {per_call * 1e6:10.1f} us/call", file=out)
        if status != "ok":
            return 1
    return 0


# -- the embedded encoder, compiled and run ---------------------------------------------------------------


def run_encoder_example(shapes: list[tuple[int, int]], out: TextIO, progress=None) -> int:
    """Import and compile the embedded encoder once, run it at each (batch, seq) in `shapes`, and check each
    result against the graph interpreter (the numpy meaning of the imported model)."""
    import onnx  # noqa: PLC0415

    from shapeflow.frontend import from_onnx  # noqa: PLC0415
    from shapeflow.ir.graph import run as interpret  # noqa: PLC0415
    from shapeflow.passes.infra import PassContext  # noqa: PLC0415

    start = time.perf_counter()
    mod = from_onnx(onnx.load(str(embedded_model_path())), dims=ENCODER_DIMS)
    instruments = [*PassContext.current().instruments, *([progress] if progress is not None else [])]
    with PassContext(instruments=instruments):
        exe = sf.compile(mod, target="cpu", dims=ENCODER_DIMS)
    if progress is not None:
        progress.step("done")
    print(
        f"compiled the embedded encoder (symbolic batch and seq, {len(exe.library.kernels)} kernels) "
        f"in {time.perf_counter() - start:.1f} s",
        file=out,
    )
    rng = np.random.default_rng(0)
    status = 0
    for batch, seq in shapes:
        x = rng.standard_normal((batch, seq, ENCODER_CONFIG["hidden"])).astype("float32")
        y = exe(x)
        expected = interpret(mod, x)
        err = float(np.max(np.abs(y - expected)))
        reps = max(1, min(50, 20_000 // (batch * seq)))
        t0 = time.perf_counter()
        for _ in range(reps):
            exe(x)
        per_call = (time.perf_counter() - t0) / reps
        ok = err < 1e-3 and y.shape == (batch, seq, ENCODER_CONFIG["hidden"])
        print(
            f"  batch={batch:<3d} seq={seq:<4d} y {str(y.shape):15s} max abs err vs interpreter {err:.1e} "
            f"[{'ok' if ok else 'WRONG'}]  {per_call * 1e3:8.3f} ms/call",
            file=out,
        )
        status |= 0 if ok else 1
    return status
