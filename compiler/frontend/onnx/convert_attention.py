"""The ONNX Attention op (opset 23+) as graph ops, following onnx's reference implementation step by step:
3-D inputs split into heads, the past key/value cache, the additive bias (boolean or float mask padded to
the key length, bottom-right causal mask, sliding window, per-batch key padding), grouped-query heads,
softcap, a softmax that maps fully masked rows to 0, and the four qk_matmul_output modes."""

from __future__ import annotations

import math

from shapeflow.frontend.onnx.context import Context, Node, onnx_dtype, scalar
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import as_int, simplify


def _heads(x, num_heads: int, shape):
    """(B, S, heads * H) -> (B, heads, S, H)."""
    b, s, hidden = shape
    if as_int(hidden) is None:
        raise ValueError("hidden size")
    return op.permute_dims(op.reshape(x, (b, s, num_heads, as_int(hidden) // num_heads)), (0, 2, 1, 3))


def _safe_softmax(ctx: Context, x, dtype: str):
    """softmax over the last axis with all -inf rows giving 0 (not NaN)."""
    zero, one, ninf = scalar(0, dtype), scalar(1, dtype), scalar(-math.inf, dtype)
    x = ctx.emit(x)
    top = ctx.emit(op.max(x, (-1,), True))
    safe = op.where(op.equal(top, ninf), zero, top)
    num = ctx.emit(op.exp(op.subtract(x, safe)))
    den = ctx.emit(op.sum(num, (-1,), True))
    return op.divide(num, op.where(op.equal(den, zero), one, den))


@converter("Attention", since=23)
def _attention(ctx: Context, node: Node):
    q_name, k_name, v_name = node.inputs[:3]
    dtype = ctx.dtype(q_name)
    if not dtype.is_float or dtype.kind == "bfloat":
        # bfloat16: the reference rounds every intermediate (reductions included) to bfloat16, which
        # neither float32 compute nor compiled bfloat16 arithmetic reproduces within the tolerance.
        raise node.unsupported(f"dtype {dtype}")
    dt = str(dtype)
    q, k, v = (ctx.expr(n) for n in (q_name, k_name, v_name))
    rank = ctx.rank(q_name)
    q_heads, kv_heads = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if rank == 3:
        if q_heads is None or kv_heads is None:
            raise node.unsupported("3-D inputs need q_num_heads and kv_num_heads")
        try:
            q = _heads(q, q_heads, ctx.shape(q_name))
            k = _heads(k, kv_heads, ctx.shape(k_name))
            v = _heads(v, kv_heads, ctx.shape(v_name))
        except ValueError:
            raise node.unsupported("a symbolic hidden size is not supported") from None
    elif rank != 4:
        raise node.unsupported(f"rank-{rank} inputs")
    q, k, v = ctx.emit(q), ctx.emit(k), ctx.emit(v)
    qshape, kshape = _shape(q), _shape(k)
    head_size = as_int(qshape[3])
    scale = node.attr("scale")
    if scale is None:
        if head_size is None:
            raise node.unsupported("a symbolic head size needs an explicit scale")
        scale = 1.0 / math.sqrt(head_size)
    root = scalar(math.sqrt(scale), dt)

    past_key, past_value = node.input(4), node.input(5)
    nonpad = node.input(6)
    if bool(past_key) != bool(past_value):
        raise node.unsupported("past_key and past_value must be given together")
    if past_key:
        k = ctx.emit(op.concat([ctx.expr(past_key), k], axis=2))
        v = ctx.emit(op.concat([ctx.expr(past_value), v], axis=2))
    present_key, present_value = k, v
    kshape = _shape(k)
    s_len, l_len = qshape[2], kshape[2]

    bias = _bias(ctx, node, dt, s_len, l_len, past_key, nonpad, qshape[0])
    total_q, total_kv = as_int(qshape[1]), as_int(kshape[1])
    if total_q is None or total_kv is None:
        raise node.unsupported("symbolic head counts are not supported")
    if total_q != total_kv and total_q % total_kv == 0:
        k, v = _repeat_heads(k, total_q // total_kv), _repeat_heads(v, total_q // total_kv)

    qk = ctx.emit(op.matmul(op.multiply(q, root), op.permute_dims(op.multiply(k, root), (0, 1, 3, 2))))
    softcap = node.attr("softcap", 0.0)
    if softcap > 0:
        cap = scalar(softcap, dt)
        qk = ctx.emit(op.multiply(op.tanh(op.divide(qk, cap)), cap))
    with_bias = ctx.emit(op.add(qk, bias)) if bias is not None else qk
    mode = node.attr("qk_matmul_output_mode", 0)
    qk_out = with_bias if mode == 2 else qk

    precision = node.attr("softmax_precision")
    logits = with_bias
    if precision is not None:
        logits = op.astype(logits, str(onnx_dtype(precision, "Attention softmax_precision")))
    probs = _safe_softmax(ctx, logits, str(onnx_dtype(precision, "")) if precision is not None else dt)
    if bias is not None:
        masked = op.equal(op.max(bias, (-1,), True), scalar(-math.inf, dt))
        probs = op.where(
            masked, scalar(0, str(onnx_dtype(precision, "")) if precision is not None else dt), probs
        )
    probs = ctx.emit(op.astype(probs, dt) if precision is not None else probs)
    if mode == 3:
        qk_out = probs
    elif mode not in (0, 1, 2):
        raise node.unsupported(f"qk_matmul_output_mode={mode}")
    y = op.matmul(probs, v)
    if rank == 3:
        yshape = _shape(ctx.emit(y))
        y = op.reshape(
            op.permute_dims(y, (0, 2, 1, 3)), (yshape[0], yshape[2], simplify(yshape[1] * yshape[3]))
        )
    return [y, present_key, present_value, qk_out][: len(node.outputs)]


def _shape(expr):
    from shapeflow.ir.graph.infer import type_of  # noqa: PLC0415

    return type_of(expr).shape


def _repeat_heads(x, reps: int):
    """(B, h, L, H) -> (B, h * reps, L, H), each head repeated `reps` times in place."""
    b, h, seq, size = _shape(x)
    wide = op.broadcast_to(op.expand_dims(x, (2,)), (b, h, reps, seq, size))
    return op.reshape(wide, (b, simplify(h * reps), seq, size))


def _bias(ctx: Context, node: Node, dt: str, s_len, l_len, past_key: str, nonpad: str, batch):
    """The additive attention bias (None when nothing is masked)."""
    zero, ninf = scalar(0, dt), scalar(-math.inf, dt)
    mask = None
    if node.input(3):
        name = node.inputs[3]
        mask = ctx.expr(name)
        mshape = ctx.shape(name)
        pad = simplify(l_len - mshape[-1])
        if as_int(pad) is None:
            raise node.unsupported("a symbolic mask padding is not supported")
        is_bool = ctx.dtype(name).is_bool
        if as_int(pad) > 0:
            widths = [0] * (2 * len(mshape))
            widths[-1] = as_int(pad)
            mask = op.pad(mask, tuple(widths), 0.0 if is_bool else -math.inf)
        if is_bool:
            mask = op.where(mask, zero, ninf)
    rows = op.reshape(op.arange(0, s_len, 1, "int64"), (s_len, 1))
    cols = op.reshape(op.arange(0, l_len, 1, "int64"), (1, l_len))
    offset = None  # scalar int or a (B, 1, 1) tensor
    if past_key:
        offset = ctx.shape(past_key)[2]
    elif nonpad:
        offset = op.reshape(
            op.subtract(ctx.expr(nonpad), op.astype(_scalar_i64(s_len), "int64")), (batch, 1, 1)
        )
    else:
        offset = 0
    zeros = op.zeros((s_len, l_len), dt)

    def frontier(extra):
        base = rows if isinstance(offset, int) and offset == 0 else op.add(rows, _offset_expr(offset))
        return op.add(base, scalar(extra, "int64")) if extra else base

    def per_batch(t):
        return op.expand_dims(t, (1,)) if not isinstance(offset, int) and not _is_prim(offset) else t

    bias = None
    if node.attr("is_causal", 0):
        allowed = op.less_equal(cols, frontier(0))
        bias = op.add(zeros if mask is None else mask, per_batch(op.where(allowed, zero, ninf)))
    elif mask is not None:
        bias = op.add(zeros, mask)
    left, right = node.attr("left_window_size", -1), node.attr("right_window_size", -1)
    if left >= 0 or right >= 0:
        diff = op.subtract(frontier(0), cols)
        allowed = None
        if left >= 0:
            allowed = op.less_equal(diff, scalar(left, "int64"))
        if right >= 0:
            cond = op.less_equal(op.neg(diff), scalar(right, "int64"))
            allowed = cond if allowed is None else op.logical_and(allowed, cond)
        window = per_batch(op.where(allowed, zero, ninf))
        bias = op.add(op.add(zeros, bias) if bias is not None else zeros, window)
    if nonpad:
        keep = op.less(cols, op.reshape(ctx.expr(nonpad), (batch, 1)))
        padding = op.reshape(op.where(keep, zero, ninf), (batch, 1, 1, l_len))
        bias = padding if bias is None else op.add(bias, padding)
    return None if bias is None else ctx.emit(bias)


def _is_prim(value) -> bool:
    from shapeflow.ir.expr import PrimExpr  # noqa: PLC0415

    return isinstance(value, PrimExpr)


def _offset_expr(offset):
    if _is_prim(offset):
        return _scalar_i64(offset)
    return offset


def _scalar_i64(value):
    from shapeflow.ir.graph.shape import as_int as _as_int  # noqa: PLC0415

    known = _as_int(value) if _is_prim(value) else value
    if known is None:
        raise ValueError("a symbolic length")
    return scalar(int(known), "int64")


@converter("RotaryEmbedding", since=23)
def _rotary_embedding(ctx: Context, node: Node):
    """Rotary position embedding as onnx's reference computes it: (B, S, heads, H) layout inside, the first
    rotary_embedding_dim features rotated (halves or interleaved pairs) by the cos/sin caches, optionally
    gathered by position_ids."""
    name = node.inputs[0]
    shape = list(ctx.shape(name))
    x = ctx.expr(name)
    rank = len(shape)
    if rank == 4:
        x = op.permute_dims(x, (0, 2, 1, 3))
        shape = [shape[0], shape[2], shape[1], shape[3]]
    elif rank == 3:
        heads = node.attr("num_heads", 0)
        hidden = as_int(shape[2])
        if not heads or hidden is None:
            raise node.unsupported("3-D input needs num_heads and a static hidden size")
        shape = [shape[0], shape[1], heads, hidden // heads]
        x = op.reshape(x, tuple(shape))
    else:
        raise node.unsupported(f"rank-{rank} input")
    x = ctx.emit(x)
    head = shape[3] if isinstance(shape[3], int) else as_int(shape[3])  # an int for 3-D inputs
    if head is None:
        raise node.unsupported("a symbolic head size")
    dim = node.attr("rotary_embedding_dim", 0) or head
    half = dim // 2
    cos, sin = ctx.expr(node.inputs[1]), ctx.expr(node.inputs[2])
    if node.input(3):
        ids = ctx.expr(node.inputs[3])
        cos, sin = op.take(cos, ids, 0), op.take(sin, ids, 0)
    cos, sin = ctx.emit(op.expand_dims(cos, (2,))), ctx.emit(op.expand_dims(sin, (2,)))

    def part(begin, end, step):
        return ctx.emit(op.strided_slice(x, (3,), (begin,), (end,), (step,)))

    interleaved = node.attr("interleaved", 0)
    x1, x2 = (part(0, dim, 2), part(1, dim, 2)) if interleaved else (part(0, half, 1), part(half, dim, 1))
    real = ctx.emit(op.subtract(op.multiply(cos, x1), op.multiply(sin, x2)))
    imag = ctx.emit(op.add(op.multiply(sin, x1), op.multiply(cos, x2)))
    if interleaved:
        pairs = op.concat([op.expand_dims(real, (4,)), op.expand_dims(imag, (4,))], axis=4)
        rotated = op.reshape(pairs, (shape[0], shape[1], shape[2], dim))
    else:
        rotated = op.concat([real, imag], axis=3)
    out = op.concat([rotated, part(dim, head, 1)], axis=3) if dim < head else rotated
    if rank == 3:
        return op.reshape(out, tuple(ctx.shape(name)))
    return op.permute_dims(out, (0, 2, 1, 3))
