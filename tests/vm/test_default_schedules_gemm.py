"""Default schedule rule 1: matmul/linear kernels run on the hierarchy GEMM through the VM's call_gemm;
constant weights are packed once per load; results equal the graph interpreter at sizes 1, primes and
bounds; artifacts round-trip in a fresh process."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import shapeflow as sf
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.passes.graph import schedule_rules
from shapeflow.passes.hierarchy import GemmKernel

rng = np.random.default_rng(7)
D, H = 24, 40
W1 = (rng.standard_normal((H, D)) / math.sqrt(D)).astype("float32")
B1 = rng.standard_normal(H).astype("float32")
W2 = (rng.standard_normal((H, D)) / math.sqrt(H)).astype("float32")  # matmul's (K, N) layout


def const_mlp():
    """x (b, s, D) -> linear(W1 const) + bias + gelu -> matmul(W2 const) + residual; symbolic b, s."""
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, D), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(op.gelu(op.linear(x, W1, B1)))
            out = bb.emit_output(op.add(op.matmul(h, W2), x))
        bb.emit_func_output(out)
    return bb.get()


def attention():
    """q k^T scaled, softmax, times v: batched matmuls with non-constant B (b, heads 3, s, 8)."""
    b, s = Var("b"), Var("s")
    q, k, v = (GraphVar(n, TensorType((b, 3, s, 8), "float32")) for n in "qkv")
    bb = BlockBuilder()
    with bb.function("main", [q, k, v]):
        with bb.dataflow():
            scores = bb.emit(op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 0.25))
            probs = bb.emit(op.softmax(scores, axis=-1))
            out = bb.emit_output(op.matmul(probs, v))
        bb.emit_func_output(out)
    return bb.get()


DIMS = {"b": (1, 4), "s": (1, 67)}
SIZES = [(1, 1), (1, 2), (2, 7), (3, 13), (4, 67)]


@pytest.fixture(scope="module")
def mlp_exe():
    return sf.compile(const_mlp(), dims=DIMS)


def _opcodes(exe) -> list[list]:
    return [ins for f in exe.program.functions.values() for ins in f.code]


def test_linear_and_matmul_run_on_the_gemm_with_constant_weights(mlp_exe):
    gemms = [ins for ins in _opcodes(mlp_exe) if ins[0] == "call_gemm"]
    assert [g[1] for g in gemms] == ["dense", "gemm"]
    assert all(isinstance(g[3], list) and g[3][0] == "const" for g in gemms)  # packed at load, not a register


@pytest.mark.parametrize(("b", "s"), SIZES)
def test_const_mlp_matches_interpreter(mlp_exe, b, s):
    x = rng.standard_normal((b, s, D)).astype("float32")
    want = run(const_mlp(), x)
    np.testing.assert_allclose(mlp_exe(x), want, rtol=1e-4, atol=1e-4)


def test_constant_weights_are_packed_once_per_load(monkeypatch):
    calls = []
    original = GemmKernel.pack_weights

    def counting(self, b):
        calls.append(b.shape)
        return original(self, b)

    monkeypatch.setattr(GemmKernel, "pack_weights", counting)
    exe = sf.compile(const_mlp(), dims=DIMS)
    assert sorted(calls) == sorted([W1.shape, W2.shape])
    for s in (1, 5, 9):
        exe(rng.standard_normal((1, s, D)).astype("float32"))
    assert len(calls) == 2


@pytest.mark.parametrize(("b", "s"), [(1, 1), (2, 5), (1, 31), (4, 67)])
def test_batched_matmuls_with_activation_operands(b, s):
    exe = sf.compile(attention(), dims=DIMS)
    assert [ins[1] for ins in _opcodes(exe) if ins[0] == "call_gemm"] == ["batched", "batched"]
    q, k, v = (rng.standard_normal((b, 3, s, 8)).astype("float32") for _ in range(3))
    np.testing.assert_allclose(exe(q, k, v), run(attention(), q, k, v), rtol=1e-4, atol=1e-5)


def test_parameter_weights_and_opt_level_zero(monkeypatch):
    n = Var("n")
    x = GraphVar("x", TensorType((n, D), "float32"))
    w = GraphVar("w", TensorType((H, D), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x, w]):
        with bb.dataflow():
            out = bb.emit_output(op.relu(op.linear(x, w)))
        bb.emit_func_output(out)
    mod = bb.get()
    calls, original = [], schedule_rules.run_gemm

    def counting(*args):
        calls.append(args[2].shape)
        original(*args)

    monkeypatch.setattr(schedule_rules, "run_gemm", counting)  # the VM binds it when it loads the program
    exe = sf.compile(mod)
    (gemm,) = [ins for ins in _opcodes(exe) if ins[0] == "call_gemm"]
    assert gemm[3] == 1  # the weight's register: packed per call, so a few rows take the loop nest
    fallback_kernel, max_rows = gemm[5]
    assert exe.program.kernels[fallback_kernel].endswith("_small_m") and max_rows >= 1

    assert not any(ins[0] == "call_gemm" for ins in _opcodes(sf.compile(mod, opt_level=0)))
    for rows in (1, max_rows, max_rows + 1, 17):
        xs = rng.standard_normal((rows, D)).astype("float32")
        np.testing.assert_allclose(exe(xs, W1), np.maximum(xs @ W1.T, 0), rtol=1e-4, atol=1e-5)
    assert calls == [(max_rows + 1, D), (17, D)]  # the GEMM ran for the larger row counts only
    assert exe(np.zeros((0, D), "float32"), W1).shape == (0, H)


def test_artifact_round_trip_in_a_fresh_process(mlp_exe, tmp_path):
    path = tmp_path / "mlp.sfa"
    mlp_exe.save(path)
    x = rng.standard_normal((2, 11, D)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import numpy as np, shapeflow as sf
        exe = sf.load({str(path)!r})
        ops = [i[0] for f in exe.program.functions.values() for i in f.code]
        assert ops.count("call_gemm") == 2, ops
        np.save({str(tmp_path)!r} + "/y.npy", exe(np.load({str(tmp_path)!r} + "/x.npy")))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), mlp_exe(x), rtol=1e-6, atol=1e-6)


def mini_encoder(constant_weights: bool):
    """A post-norm encoder block (hidden 24, 3 heads, ffn 40) over symbolic (b, s, 24); weights either
    constants (packed at load) or parameters (packed per call, loop nest for a few rows)."""
    hid, heads, ffn = 24, 3, 40
    r = np.random.default_rng(3)
    ws = {n: (r.standard_normal((hid, hid)) / 5).astype("float32") for n in ("wq", "wk", "wv", "wo")}
    ws.update(
        w1=(r.standard_normal((ffn, hid)) / 5).astype("float32"), b1=r.standard_normal(ffn).astype("f4")
    )
    ws.update(w2=(r.standard_normal((hid, ffn)) / 6).astype("float32"), g=np.ones(hid, "float32"))
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, hid), "float32"))
    params = (
        {} if constant_weights else {n: GraphVar(n, TensorType(a.shape, "float32")) for n, a in ws.items()}
    )
    P = ws if constant_weights else params
    bb = BlockBuilder()

    def heads_of(t):
        return op.permute_dims(op.reshape(t, (b, s, heads, hid // heads)), (0, 2, 1, 3))

    with bb.function("main", [x, *params.values()]):
        with bb.dataflow():
            q, k, v = (bb.emit(heads_of(op.linear(x, P[n]))) for n in ("wq", "wk", "wv"))
            scores = bb.emit(op.multiply(op.matmul(q, op.permute_dims(k, (0, 1, 3, 2))), 0.35))
            ctx = bb.emit(op.matmul(op.softmax(scores, axis=-1), v))
            ctx = bb.emit(op.reshape(op.permute_dims(ctx, (0, 2, 1, 3)), (b, s, hid)))
            h = bb.emit(op.layer_norm(op.add(x, op.linear(ctx, P["wo"])), P["g"], P["g"], axes=(-1,)))
            f = bb.emit(op.linear(op.gelu(op.linear(h, P["w1"], P["b1"])), P["w2"]))
            out = bb.emit_output(op.rms_norm(op.add(h, f), P["g"], axes=(-1,)))
        bb.emit_func_output(out)
    return bb.get(), [] if constant_weights else list(ws.values())


@pytest.mark.parametrize("constant_weights", [True, False])
def test_encoder_block_matches_interpreter(constant_weights):
    mod, weights = mini_encoder(constant_weights)
    exe = sf.compile(mod, dims=DIMS)
    kinds = sorted(ins[1] for ins in _opcodes(exe) if ins[0] == "call_gemm")
    assert kinds == ["batched"] * 2 + ["dense"] * 6
    for b, s in [(1, 1), (2, 3), (1, 16), (1, 17), (3, 29), (4, 67)]:
        x = rng.standard_normal((b, s, 24)).astype("float32")
        want = run(mini_encoder(constant_weights)[0], x, *weights)
        np.testing.assert_allclose(exe(x, *weights), want, rtol=2e-4, atol=2e-4)


def test_a_constant_weight_shared_by_two_layers_is_packed_once(monkeypatch):
    calls = []
    original = GemmKernel.pack_weights
    monkeypatch.setattr(
        GemmKernel, "pack_weights", lambda self, b: calls.append(b.shape) or original(self, b)
    )
    n = Var("n")
    x = GraphVar("x", TensorType((n, D), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(op.linear(x, W1))
            out = bb.emit_output(op.add(h, op.linear(op.multiply(x, 2.0), W1)))
        bb.emit_func_output(out)
    exe = sf.compile(bb.get())
    xs = rng.standard_normal((5, D)).astype("float32")
    np.testing.assert_allclose(exe(xs), 3 * xs @ W1.T, rtol=1e-4, atol=1e-4)
    assert calls == [W1.shape]
