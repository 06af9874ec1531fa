"""Converters of the remaining ONNX ops: bitwise ops and shifts, the losses (NegativeLogLikelihoodLoss,
SoftmaxCrossEntropyLoss), Hardmax, Swish, EyeLike, OneHot, LpPool, BitCast, Det, MaxUnpool,
TfIdfVectorizer."""

from __future__ import annotations

import itertools

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node, onnx_dtype, scalar
from shapeflow.frontend.onnx.registry import Known, converter, register_simple
from shapeflow.ir.graph import expr as G
from shapeflow.ir.graph import op
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.ops import bitcast
from shapeflow.ir.graph.shape import as_int
from shapeflow.ir.graph.types import TensorType

# -- bitwise ---------------------------------------------------------------------------------------


def _bitwise(graph_op: str):
    build = getattr(op, graph_op)
    return lambda ctx, node: build(*(ctx.expr(n) for n in node.inputs))


for _onnx, _graph in {
    "BitwiseAnd": "bitwise_and",
    "BitwiseOr": "bitwise_or",
    "BitwiseXor": "bitwise_xor",
    "BitwiseNot": "bitwise_not",
}.items():
    register_simple(_onnx, _bitwise(_graph))


@converter("BitShift")
def _bit_shift(ctx, node):
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise node.unsupported(f"direction {direction!r}")
    a, b = (ctx.expr(n) for n in node.inputs)
    return op.left_shift(a, b) if direction == "LEFT" else op.right_shift(a, b)


# -- losses ----------------------------------------------------------------------------------------


def nll_loss(ctx: Context, node: Node, log_prob, dtype, target_name: str, weight_name: str):
    """ONNX NegativeLogLikelihoodLoss of `log_prob` (N, C, d...) against integer targets (N, d...)."""
    reduction = node.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        raise node.unsupported(f"reduction {reduction!r}")
    ignore = node.attr("ignore_index")
    target = ctx.expr(target_name)
    tdtype = ctx.dtype(target_name)
    zero_t = scalar(0, tdtype)
    ignored = op.equal(target, scalar(ignore, tdtype)) if ignore is not None else None
    # An ignored target may be out of range: read class 0 instead, and weigh it 0.
    safe = op.where(ignored, zero_t, target) if ignored is not None else target
    picked = op.squeeze(op.gather_elements(log_prob, op.expand_dims(safe, (1,)), 1), (1,))
    one, zero = scalar(1, dtype), scalar(0, dtype)
    if weight_name:
        weight = op.take(ctx.expr(weight_name), safe, 0)
    else:
        weight = op.broadcast_to(one, tuple(ctx.shape(target_name))) if ignored is not None else None
    if ignored is not None:
        weight = op.where(ignored, zero, weight)
    loss = op.neg(picked) if weight is None else op.neg(op.multiply(picked, weight))
    if reduction == "none":
        return loss
    total = op.sum(loss, None, False)
    if reduction == "sum":
        return total
    if weight is None:
        return op.divide(total, scalar(_count(ctx, node, target_name), dtype))
    return op.divide(total, op.sum(weight, None, False))


def _count(ctx: Context, node: Node, name: str) -> int:
    count = 1
    for d in ctx.shape(name):
        if as_int(d) is None:
            raise node.unsupported("a mean loss over symbolic dims is not supported")
        count *= as_int(d)
    return count


@converter("NegativeLogLikelihoodLoss")
def _nll_loss(ctx, node):
    dtype = ctx.dtype(node.inputs[0])
    if not dtype.is_float:
        raise node.unsupported(f"dtype {dtype}")
    return nll_loss(ctx, node, ctx.expr(node.inputs[0]), dtype, node.inputs[1], node.input(2))


@converter("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy(ctx, node):
    dtype = ctx.dtype(node.inputs[0])
    if not dtype.is_float:
        raise node.unsupported(f"dtype {dtype}")
    log_prob = ctx.emit(op.log_softmax(ctx.expr(node.inputs[0]), 1))
    loss = nll_loss(ctx, node, log_prob, dtype, node.inputs[1], node.input(2))
    return [loss, log_prob] if len(node.outputs) > 1 else loss


# -- Hardmax, Swish, EyeLike, OneHot, LpPool ---------------------------------------------------------------


@converter("Hardmax", since=13)
def _hardmax(ctx, node):
    name = node.inputs[0]
    axis = node.attr("axis", -1) % ctx.rank(name)
    x = ctx.expr(name)
    first = ctx.emit(op.argmax(x, axis, True))
    positions = op.arange(0, ctx.shape(name)[axis], 1, "int64")
    shape = [1] * ctx.rank(name)
    shape[axis] = ctx.shape(name)[axis]
    hit = op.equal(op.reshape(positions, tuple(shape)), first)
    dtype = ctx.dtype(name)
    return op.where(hit, scalar(1, dtype), scalar(0, dtype))


@converter("Swish", since=24)
def _swish(ctx, node):
    name = node.inputs[0]
    x = ctx.expr(name)
    return op.multiply(x, op.sigmoid(op.multiply(x, scalar(node.attr("alpha", 1.0), ctx.dtype(name)))))


@converter("EyeLike")
def _eye_like(ctx, node):
    shape = [as_int(d) for d in ctx.shape(node.inputs[0])]
    if len(shape) != 2 or None in shape:
        raise node.unsupported("EyeLike needs a static 2-D input")
    dtype_attr = node.attr("dtype")
    dtype = ctx.dtype(node.inputs[0]) if dtype_attr is None else onnx_dtype(dtype_attr, "EyeLike dtype")
    return Known(np.eye(shape[0], shape[1], node.attr("k", 0), dtype=dtype.to_numpy()))


@converter("OneHot")
def _one_hot(ctx, node):
    depth = ctx.const(node, 1, "depth")
    values = ctx.expr(node.inputs[2])
    depth = int(depth.reshape(-1)[0])
    name = node.inputs[0]
    rank = ctx.rank(name) + 1
    axis = node.attr("axis", -1) % rank
    indices = ctx.expr(name)
    idtype = ctx.dtype(name)
    wrapped = op.where(op.less(indices, scalar(0, idtype)), op.add(indices, scalar(depth, idtype)), indices)
    positions = op.arange(0, depth, 1, str(idtype))
    shape = [1] * rank
    shape[axis] = depth
    hit = op.equal(op.expand_dims(wrapped, (axis,)), op.reshape(positions, tuple(shape)))
    off = op.take(values, _index(0), 0)
    on = op.take(values, _index(1), 0)
    return op.where(hit, on, off)


def _index(i: int):
    """A rank-0 int64 index constant."""
    return scalar(i, "int64")


@converter("LpPool", since=18)
def _lp_pool(ctx, node):
    """(sum over the window of |x|^p)^(1/p): a padded average pool (divisor: the kernel size) of |x|^p
    times the kernel size. 1-D pools run as 2-D pools over a unit height."""
    name = node.inputs[0]
    dtype = ctx.dtype(name)
    kernel = list(node.attr("kernel_shape"))
    rank = len(kernel)
    if rank not in (1, 2, 3):
        raise node.unsupported(f"{rank}-D LpPool is not supported (1-D to 3-D only)")
    if node.attr("ceil_mode", 0):
        raise node.unsupported("ceil_mode=1 is not supported")
    from shapeflow.frontend.onnx.convert_nn import _pool3d, _window_padding  # noqa: PLC0415

    strides = node.attr("strides") or [1] * rank
    dilations = node.attr("dilations") or [1] * rank
    pads = _window_padding(ctx, node, kernel, strides, dilations)
    p = float(node.attr("p", 2))
    powered = op.power(op.abs(ctx.expr(name)), scalar(p, dtype))

    def pool(v, *args):
        return op.avg_pool2d(v, *args, True)

    if rank == 3:  # an average over the window is separable: (H, W) then D
        mean = _pool3d(ctx, pool, powered, ctx.shape(name), kernel, strides, pads, dilations)
    else:
        if rank == 1:
            powered = op.expand_dims(powered, (2,))
            kernel, strides, dilations = [1, *kernel], [1, *strides], [1, *dilations]
            pads = [0, pads[0], 0, pads[1]]
        mean = pool(powered, tuple(kernel), tuple(strides), tuple(pads), tuple(dilations))
    total = op.multiply(mean, scalar(float(np.prod(kernel)), dtype))
    y = op.power(total, scalar(1.0 / p, dtype))
    return op.squeeze(y, (2,)) if rank == 1 else y


# -- Einsum -----------------------------------------------------------------------------------------------


def _einsum_terms(node: Node, equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand subscripts and output subscripts, with '...' spelled out as upper-case letters."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise node.unsupported(f"equation {equation!r} does not match {len(ranks)} operands")
    ellipsis_rank = 0
    spelled = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            extra = rank - (len(term) - 3)
            ellipsis_rank = max(ellipsis_rank, extra)
            term = term.replace("...", "ABCDEFGH"[8 - extra :] if extra else "")
        if len(term) != rank:
            raise node.unsupported(f"equation {equation!r} does not match the operands' ranks")
        spelled.append(term)
    dots = "ABCDEFGH"[8 - ellipsis_rank :] if ellipsis_rank else ""
    if arrow:
        out = rhs.replace("...", dots)
    else:
        letters = "".join(spelled)
        out = dots + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c.islower()))
    return spelled, out


def _einsum_diagonals(ctx: Context, node: Node, x, term: str):
    """An operand whose subscripts repeat a letter ('ii') reduced to its diagonal along those axes: the two
    axes moved last, flattened, and every (n + 1)-th element taken. Returns the operand and its term."""
    while len(set(term)) != len(term):
        letter = next(c for c in term if term.count(c) > 1)
        i = term.index(letter)
        j = term.index(letter, i + 1)
        shape = type_of(x).shape
        n = as_int(shape[i])
        if n is None or as_int(shape[j]) != n:
            raise node.unsupported(f"a diagonal over subscript {letter!r} needs equal static dims")
        rest = [k for k in range(len(term)) if k not in (i, j)]
        x = ctx.emit(op.permute_dims(x, (*rest, i, j)))
        x = ctx.emit(op.reshape(x, (*[shape[k] for k in rest], n * n)))
        x = ctx.emit(op.take(x, np.arange(n, dtype=np.int64) * (n + 1), axis=len(rest)))
        term = "".join(term[k] for k in rest) + letter
    return x, term


@converter("Einsum")
def _einsum(ctx, node):
    names = [n for n in node.inputs if n]
    terms, out = _einsum_terms(node, node.attr("equation"), [ctx.rank(n) for n in names])
    letters = list(dict.fromkeys(out + "".join(t for t in terms if t)))
    product = None
    for name, term in zip(names, terms):
        x, term = _einsum_diagonals(ctx, node, ctx.expr(name), term)
        # operand axes in `letters` order, missing letters as unit dims (they broadcast)
        order = sorted(range(len(term)), key=lambda i: letters.index(term[i]))
        if order != list(range(len(term))):
            x = op.permute_dims(x, tuple(order))
        present = [letters.index(term[i]) for i in order]
        missing = tuple(i for i in range(len(letters)) if i not in present)
        if missing:
            x = op.expand_dims(x, missing)
        product = x if product is None else op.multiply(product, x)
    summed = tuple(range(len(out), len(letters)))
    if summed:
        product = op.sum(product, summed, False)
    elif len(names) == 1:
        product = op.add(product, scalar(0, ctx.dtype(names[0])))
    return product


@converter("QLinearMatMul")
def _qlinear_matmul(ctx, node):
    """(a - a_zp) @ (b - b_zp) in int32, rescaled by a_scale * b_scale / y_scale, rounded, shifted by y_zp
    and saturated, as the reference computes it (per-tensor scales only)."""
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = node.inputs[:8]
    for name in (a_scale, a_zp, b_scale, b_zp, y_scale, y_zp):
        if ctx.rank(name) != 0 and any(as_int(d) != 1 for d in ctx.shape(name)):
            raise node.unsupported("per-axis scales are not supported")
    if not ctx.dtype(a_scale).is_float or str(ctx.dtype(a_scale)) != "float32":
        raise node.unsupported(f"scale dtype {ctx.dtype(a_scale)}")
    target = ctx.dtype(y_zp)

    def centered(x, zp):
        return op.subtract(op.astype(ctx.expr(x), "int32"), op.reshape(op.astype(ctx.expr(zp), "int32"), ()))

    acc = op.astype(op.matmul(centered(a, a_zp), centered(b, b_zp)), "float32")
    scales = [op.reshape(ctx.expr(s), ()) for s in (a_scale, b_scale, y_scale)]
    factor = op.divide(op.multiply(scales[0], scales[1]), scales[2])
    q = op.add(op.round(op.multiply(acc, factor)), op.reshape(op.astype(ctx.expr(y_zp), "float32"), ()))
    info = np.iinfo(target.to_numpy())
    return op.astype(op.clip(q, float(info.min), float(info.max)), str(target))


# -- BitCast ---------------------------------------------------------------------------------------


@converter("BitCast", since=26)
def _bit_cast(ctx: Context, node: Node):
    """The bytes reinterpreted through the `shapeflow.bitcast` library function (graph op module bitcast).
    A 16-bit float input reaches converters as its float32 copy (the importer upcasts arithmetic); the
    bits wanted are the original's, named before the "\\0float32" suffix of the copy."""
    name = node.inputs[0].split("\0")[0]
    source = ctx.dtype(name)
    target = onnx_dtype(node.attr("to"), "ONNX op 'BitCast' attribute 'to'")
    if source.to_numpy().itemsize != target.to_numpy().itemsize:
        raise node.unsupported(f"{source} and {target} have different bit widths")
    if name in ctx.known and name not in ctx.values and ctx.known[name].dtype != object:
        return Known(np.ascontiguousarray(ctx.known[name]).view(target.to_numpy()))
    return op.call_dps_library(bitcast.LIBRARY_NAME, [ctx.expr(name)], TensorType(ctx.shape(name), target))


# -- Det --------------------------------------------------------------------------------------------

MAX_DET_SIZE = 5  # the Leibniz expansion has n! terms


@converter("Det", since=11)
def _det(ctx: Context, node: Node):
    """The Leibniz expansion over the permutations of a static n x n (n <= MAX_DET_SIZE), batched over the
    leading dims: the sum of signed products of one element per row."""
    name = node.inputs[0]
    dtype = ctx.dtype(name)
    if not dtype.is_float:
        raise node.unsupported(f"dtype {dtype} is not supported (float inputs only)")
    shape = ctx.shape(name)
    n = as_int(shape[-1]) if len(shape) >= 2 else None
    if n is None or as_int(shape[-2]) != n:
        raise node.unsupported(f"a square matrix of static size is needed, got {shape}")
    if not 1 <= n <= MAX_DET_SIZE:
        raise node.unsupported(f"matrices of size {n} are not supported (1 to {MAX_DET_SIZE})")
    x = ctx.expr(name)
    rows = [ctx.emit(op.take(x, np.array(i, np.int64), axis=len(shape) - 2)) for i in range(n)]
    entries = [
        [ctx.emit(op.take(r, np.array(j, np.int64), axis=len(shape) - 2)) for j in range(n)] for r in rows
    ]
    total = None
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        term = entries[0][perm[0]]
        for i in range(1, n):
            term = ctx.emit(op.multiply(term, entries[i][perm[i]]))
        if total is None:
            total = term if inversions % 2 == 0 else ctx.emit(op.neg(term))
        else:
            total = ctx.emit(op.subtract(total, term) if inversions % 2 else op.add(total, term))
    return total


# -- MaxUnpool --------------------------------------------------------------------------------------


@converter("MaxUnpool", since=11)
def _max_unpool(ctx: Context, node: Node):
    """Values written at their MaxPool indices (flat over the whole output, as MaxPool's Indices output)
    into zeros: a scatter_elements over the flattened output."""
    x, indices = node.inputs[:2]
    shape = ctx.shape(x)
    kernel = list(node.attr("kernel_shape"))
    rank = len(kernel)
    strides = list(node.attr("strides", None) or [1] * rank)
    pads = list(node.attr("pads", None) or [0] * (2 * rank))
    spatial = [as_int(d) for d in shape[2:]]
    if any(d is None for d in (*spatial, as_int(shape[0]), as_int(shape[1]))):
        raise node.unsupported("symbolic input dims are not supported")
    inferred = [as_int(shape[0]), as_int(shape[1])] + [
        (spatial[i] - 1) * strides[i] + kernel[i] - pads[i] - pads[rank + i] for i in range(rank)
    ]
    total = int(np.prod(inferred))
    zeros = ctx.emit(op.broadcast_to(scalar(0, ctx.dtype(x)), (total,)))
    flat_x = ctx.emit(op.reshape(ctx.expr(x), (-1,)))
    flat_i = ctx.emit(op.reshape(ctx.expr(indices), (-1,)))
    scattered = ctx.emit(op.scatter_elements(zeros, flat_i, flat_x, axis=0, reduction="none"))
    y = ctx.emit(op.reshape(scattered, tuple(inferred)))
    if not node.input(2):
        return y
    # an explicit output_shape places the unpooled tensor at the origin of a larger zero tensor (as
    # onnx's reference does)
    wanted = [int(v) for v in ctx.const(node, 2, "output_shape").reshape(-1)]
    if len(wanted) != len(inferred) or any(w < i for w, i in zip(wanted, inferred)):
        raise node.unsupported(f"output_shape {wanted} is smaller than the unpooled shape {inferred}")
    widths = tuple(v for w, i in zip(wanted, inferred) for v in (0, w - i))
    return op.pad(y, pad_width=widths)


# -- TfIdfVectorizer --------------------------------------------------------------------------------


def _tfidf_pool(node: Node) -> list[tuple[tuple[int, ...], int]]:
    """(n-gram, output column) for every n-gram of the pool, in pool order."""
    pool = list(node.attr("pool_int64s", None) or [])
    if node.attr("pool_strings", None):
        raise node.unsupported("string pools are not supported")
    starts = list(node.attr("ngram_counts"))
    columns = list(node.attr("ngram_indexes"))
    grams = []
    for k, begin in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(pool)
        n = k + 1
        if (end - begin) % n:
            raise node.unsupported(f"the pool's {n}-grams do not divide into {n}-grams")
        grams.extend(tuple(pool[i : i + n]) for i in range(begin, end, n))
    if len(grams) != len(columns):
        raise node.unsupported(f"{len(columns)} ngram_indexes for {len(grams)} pool n-grams")
    return list(zip(grams, columns))


@converter("TfIdfVectorizer", since=9)
def _tfidf_vectorizer(ctx: Context, node: Node):
    """Counts of the pool's n-grams in each row, as onnxruntime: an n-gram of n >= 2 items may skip up to
    max_skip_count items between consecutive ones (each skip distance counted separately), unigrams are
    counted once. Per pool n-gram and skip distance, a conjunction of equalities over shifted slices summed
    along the row; weighted per mode (TF, IDF, TFIDF)."""
    name = node.inputs[0]
    if not ctx.dtype(name).is_integer:
        raise node.unsupported(f"dtype {ctx.dtype(name)} is not supported (integer inputs only)")
    shape = ctx.shape(name)
    if len(shape) not in (1, 2) or as_int(shape[-1]) is None:
        raise node.unsupported("a [C] or [B, C] input with a static C is supported")
    length = as_int(shape[-1])
    low, high = node.attr("min_gram_length"), node.attr("max_gram_length")
    skips = node.attr("max_skip_count")
    mode = node.attr("mode")
    weights = list(node.attr("weights", None) or [])
    if mode not in ("TF", "IDF", "TFIDF"):
        raise node.unsupported(f"mode {mode!r} is not supported")
    grams = _tfidf_pool(node)
    width = max(c for _, c in grams) + 1
    x = ctx.expr(name)
    x2 = ctx.emit(op.reshape(x, (1, length))) if len(shape) == 1 else x
    axis = 1
    rows = shape[0] if len(shape) == 2 else 1
    zero_row = ctx.emit(op.broadcast_to(scalar(0.0, "float32"), (rows,)))
    columns = [zero_row] * width
    for gram, column in grams:
        n = len(gram)
        if not low <= n <= high:
            continue
        for distance in range(1, (skips if n > 1 else 0) + 2):
            span = (n - 1) * distance
            if span >= length:
                break
            hit = None
            for k, value in enumerate(gram):
                begin, end = k * distance, length - span + k * distance
                part = ctx.emit(op.strided_slice(x2, axes=(axis,), begin=(begin,), end=(end,), strides=(1,)))
                match = op.equal(part, scalar(value, ctx.dtype(name)))
                hit = match if hit is None else op.logical_and(hit, match)
            count = ctx.emit(op.sum(op.astype(hit, "float32"), (axis,), False))
            columns[column] = ctx.emit(op.add(columns[column], count))
    stacked = ctx.emit(op.concat([ctx.emit(op.expand_dims(c, (1,))) for c in columns], axis=1))
    if mode != "TF":
        if mode == "IDF":
            stacked = ctx.emit(op.astype(op.greater(stacked, 0.0), "float32"))
        if weights:
            w = np.array(weights + [1.0] * max(0, width - len(weights)), np.float32)[:width]
            stacked = ctx.emit(op.multiply(stacked, G.Constant.from_array(w)))
    return op.reshape(stacked, (width,)) if len(shape) == 1 else stacked
