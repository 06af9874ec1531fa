"""Converters of ONNX elementwise ops: unary math and activations, binary arithmetic, comparisons and
logic, variadic Sum/Max/Min/Mean, Where, Clip.

Arithmetic and comparisons also fold at import time on symbolic shape values (`Shape` results), so that
shape subgraphs such as `Shape -> Gather -> Mul -> Concat -> Reshape` give Reshape a symbolic target.
"""

from __future__ import annotations

import math

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node, normalize_known, scalar
from shapeflow.frontend.onnx.registry import converter, register_simple
from shapeflow.ir import expr as E
from shapeflow.ir.graph import op
from shapeflow.ir.graph.shape import compare_dims, simplify

# -- unary ops that are one graph op ------------------------------------------------------------------

_UNARY = {
    "Abs": "abs",
    "Neg": "neg",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Erf": "erf",
    "Sin": "sin",
    "Cos": "cos",
    "Atan": "atan",
    "Asin": "asin",
    "Acos": "acos",
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round",
    "Sign": "sign",
    "Relu": "relu",
    "Not": "logical_not",
}


def _unary(graph_op: str):
    build = getattr(op, graph_op)
    return lambda ctx, node: build(ctx.expr(node.inputs[0]))


for _onnx, _graph in _UNARY.items():
    register_simple(_onnx, _unary(_graph))


def _fold_identity(ctx: Context, node: Node):
    value = ctx.known_value(node.inputs[0])
    return None if value is None else [value]


register_simple("Identity", lambda ctx, node: ctx.expr(node.inputs[0]), fold=_fold_identity)


# -- composite activations (float inputs), each a few graph ops -------------------------------------


def _c(ctx: Context, node: Node, value, index: int = 0):
    """A scalar constant of input `index`'s dtype."""
    return scalar(value, ctx.dtype(node.inputs[index]))


def _float_input(ctx: Context, node: Node, index: int = 0):
    name = node.inputs[index]
    if not ctx.dtype(name).is_float:
        raise node.unsupported(f"dtype {ctx.dtype(name)} is not supported (float inputs only)")
    return ctx.expr(name)


def _softplus(x, one):
    return op.log(op.add(op.exp(x), one))


def _leaky_relu(ctx, node):
    x = _float_input(ctx, node)
    return op.where(op.less(x, _c(ctx, node, 0)), op.multiply(x, _c(ctx, node, node.attr("alpha", 0.01))), x)


def _elu(ctx, node):
    x = _float_input(ctx, node)
    alpha = _c(ctx, node, node.attr("alpha", 1.0))
    neg = op.multiply(alpha, op.subtract(op.exp(x), _c(ctx, node, 1)))
    return op.where(op.less(x, _c(ctx, node, 0)), neg, x)


def _selu(ctx, node):
    x = _float_input(ctx, node)
    alpha = node.attr("alpha", 1.67326319217681884765625)
    gamma = node.attr("gamma", 1.05070102214813232421875)
    neg = op.subtract(op.multiply(_c(ctx, node, alpha * gamma), op.exp(x)), _c(ctx, node, alpha * gamma))
    return op.where(op.less_equal(x, _c(ctx, node, 0)), neg, op.multiply(x, _c(ctx, node, gamma)))


def _celu(ctx, node):
    x = _float_input(ctx, node)
    alpha = node.attr("alpha", 1.0)
    neg = op.multiply(
        _c(ctx, node, alpha), op.subtract(op.exp(op.divide(x, _c(ctx, node, alpha))), _c(ctx, node, 1))
    )
    return op.add(op.maximum(x, _c(ctx, node, 0)), op.minimum(neg, _c(ctx, node, 0)))


def _hard_sigmoid(ctx, node):
    x = _float_input(ctx, node)
    lin = op.add(
        op.multiply(x, _c(ctx, node, node.attr("alpha", 0.2))), _c(ctx, node, node.attr("beta", 0.5))
    )
    return op.clip(lin, 0.0, 1.0)


def _hard_swish(ctx, node):
    x = _float_input(ctx, node)
    lin = op.add(op.multiply(x, _c(ctx, node, 1.0 / 6.0)), _c(ctx, node, 0.5))
    return op.multiply(x, op.clip(lin, 0.0, 1.0))


def _thresholded_relu(ctx, node):
    x = _float_input(ctx, node)
    return op.where(op.greater(x, _c(ctx, node, node.attr("alpha", 1.0))), x, _c(ctx, node, 0))


def _shrink(ctx, node):
    x = _float_input(ctx, node)
    bias, lambd = node.attr("bias", 0.0), node.attr("lambd", 0.5)
    low = op.where(op.less(x, _c(ctx, node, -lambd)), op.add(x, _c(ctx, node, bias)), _c(ctx, node, 0))
    return op.where(op.greater(x, _c(ctx, node, lambd)), op.subtract(x, _c(ctx, node, bias)), low)


def _gelu(ctx, node):
    x = _float_input(ctx, node)
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise node.unsupported(f"approximate={approximate!r} is not supported")
    return op.gelu_tanh(x) if approximate == "tanh" else op.gelu(x)


def _prelu(ctx, node):
    x = _float_input(ctx, node)
    slope = ctx.expr(node.inputs[1])
    return op.where(op.less(x, _c(ctx, node, 0)), op.multiply(x, slope), x)


def _is_inf(ctx, node):
    x = _float_input(ctx, node)
    pos = op.equal(x, _c(ctx, node, math.inf))
    neg = op.equal(x, _c(ctx, node, -math.inf))
    want_pos, want_neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    if want_pos and want_neg:
        return op.logical_or(pos, neg)
    if want_pos:
        return pos
    if want_neg:
        return neg
    return op.logical_and(pos, neg)


def _atanh(x, one, half):
    return op.multiply(half, op.log(op.divide(op.add(one, x), op.subtract(one, x))))


_COMPOSITE = {
    "Reciprocal": lambda ctx, node: op.divide(_c(ctx, node, 1), _float_input(ctx, node)),
    "Softplus": lambda ctx, node: _softplus(_float_input(ctx, node), _c(ctx, node, 1)),
    "Softsign": lambda ctx, node: op.divide(
        _float_input(ctx, node), op.add(_c(ctx, node, 1), op.abs(_float_input(ctx, node)))
    ),
    "Mish": lambda ctx, node: op.multiply(
        _float_input(ctx, node), op.tanh(_softplus(_float_input(ctx, node), _c(ctx, node, 1)))
    ),
    "Tan": lambda ctx, node: op.divide(op.sin(_float_input(ctx, node)), op.cos(_float_input(ctx, node))),
    "Sinh": lambda ctx, node: op.multiply(
        _c(ctx, node, 0.5),
        op.subtract(op.exp(_float_input(ctx, node)), op.exp(op.neg(_float_input(ctx, node)))),
    ),
    "Cosh": lambda ctx, node: op.multiply(
        _c(ctx, node, 0.5), op.add(op.exp(_float_input(ctx, node)), op.exp(op.neg(_float_input(ctx, node))))
    ),
    "Asinh": lambda ctx, node: op.log(
        op.add(
            _float_input(ctx, node),
            op.sqrt(op.add(op.square(_float_input(ctx, node)), _c(ctx, node, 1))),
        )
    ),
    "Acosh": lambda ctx, node: op.log(
        op.add(
            _float_input(ctx, node),
            op.sqrt(op.subtract(op.square(_float_input(ctx, node)), _c(ctx, node, 1))),
        )
    ),
    "Atanh": lambda ctx, node: _atanh(_float_input(ctx, node), _c(ctx, node, 1), _c(ctx, node, 0.5)),
    "IsNaN": lambda ctx, node: op.not_equal(_float_input(ctx, node), _float_input(ctx, node)),
    "IsInf": _is_inf,
    "LeakyRelu": _leaky_relu,
    "Elu": _elu,
    "Selu": _selu,
    "Celu": _celu,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "ThresholdedRelu": _thresholded_relu,
    "Shrink": _shrink,
    "PRelu": _prelu,
}
for _onnx, _fn in _COMPOSITE.items():
    register_simple(_onnx, _fn)
register_simple("Gelu", _gelu, since=20)


# -- binary arithmetic, comparisons and logic ------------------------------------------------------


def _object_op(fn):
    """Fold on known values when at least one is symbolic (numeric ones fold through the ops' references)."""

    def fold(ctx: Context, node: Node):
        values = [ctx.known_value(name) for name in node.inputs]
        if any(v is None for v in values) or not any(v.dtype == object for v in values):
            return None
        if any(v.dtype.kind == "f" for v in values):
            return None
        result = fn(*(v.astype(object) for v in values))
        return None if result is None else [result]

    return fold


def _elementwise_objects(fn):
    def apply(*arrays):
        a, b = np.broadcast_arrays(*arrays)
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(a.shape):
            value = fn(E.convert(_py(a[idx]), "int64"), E.convert(_py(b[idx]), "int64"))
            if value is None:
                return None
            out[idx] = value
        return normalize_known(out)

    return apply


def _py(v):
    return int(v) if isinstance(v, (int, np.integer)) else v


def _compare(fn):
    def compare(a, b):
        result = fn(a, b)
        return None if result is None else np.bool_(result)

    def apply(*arrays):
        a, b = np.broadcast_arrays(*arrays)
        out = np.empty(a.shape, dtype=bool)
        for idx in np.ndindex(a.shape):
            value = compare(E.convert(_py(a[idx]), "int64"), E.convert(_py(b[idx]), "int64"))
            if value is None:
                return None
            out[idx] = value
        return out

    return apply


def _not(value):
    return None if value is None else not value


_SYMBOLIC_FOLD = {
    "Add": _elementwise_objects(lambda a, b: simplify(a + b)),
    "Sub": _elementwise_objects(lambda a, b: simplify(a - b)),
    "Mul": _elementwise_objects(lambda a, b: simplify(a * b)),
    "Div": _elementwise_objects(lambda a, b: simplify(E.floordiv(a, b))),
    "Equal": _compare(compare_dims),
    "Less": _compare(lambda a, b: _prove_cmp(E.LT(a, b), E.GE(a, b))),
    "Greater": _compare(lambda a, b: _prove_cmp(E.GT(a, b), E.LE(a, b))),
}


def _prove_cmp(cond, negation):
    from shapeflow.ir.graph.shape import prove  # noqa: PLC0415

    if prove(cond):
        return True
    if prove(negation):
        return False
    return None


def _binary(graph_op: str):
    build = getattr(op, graph_op)
    return lambda ctx, node: build(ctx.expr(node.inputs[0]), ctx.expr(node.inputs[1]))


_BINARY = {
    "Add": "add",
    "Sub": "subtract",
    "Mul": "multiply",
    "Div": "divide",
    "Equal": "equal",
    "Less": "less",
    "Greater": "greater",
    "LessOrEqual": "less_equal",
    "GreaterOrEqual": "greater_equal",
    "And": "logical_and",
    "Or": "logical_or",
    "Xor": "logical_xor",
}
for _onnx, _graph in _BINARY.items():
    _fold = _SYMBOLIC_FOLD.get(_onnx)
    register_simple(_onnx, _binary(_graph), fold=_object_op(_fold) if _fold else None)


@converter("Pow")
def _pow(ctx: Context, node: Node):
    base, exponent = node.inputs
    base_t, exp_t = ctx.dtype(base), ctx.dtype(exponent)
    e = ctx.expr(exponent)
    if base_t != exp_t:
        if not base_t.is_float:
            # as the reference: the power in float64, truncated back to the base's integer type
            wide = op.power(op.astype(ctx.expr(base), "float64"), op.astype(e, "float64"))
            return op.astype(wide, str(base_t))
        e = op.astype(e, str(base_t))
    return op.power(ctx.expr(base), e)


def _trunc(x):
    return op.where(op.less(x, scalar(0, x_dtype(x))), op.ceil(x), op.floor(x))


def x_dtype(expr):
    from shapeflow.ir.graph.infer import type_of  # noqa: PLC0415

    return type_of(expr).dtype


@converter("Mod")
def _mod(ctx: Context, node: Node):
    a, b = (ctx.expr(n) for n in node.inputs)
    dtype = ctx.dtype(node.inputs[0])
    if not node.attr("fmod", 0):
        return _float_mod(ctx, a, b, dtype) if dtype.is_float else op.floor_mod(a, b)
    if dtype.is_float:
        q = op.divide(a, b)
        return op.subtract(a, op.multiply(_trunc(q), b))
    return op.subtract(a, op.multiply(op.divide(a, b), b))  # integer divide truncates, as C's fmod


def _float_mod(ctx: Context, a, b, dtype):
    """numpy's float mod (the sign of the divisor), as npy_divmod computes it: r = fmod(a, b); a nonzero r
    whose sign differs from b's moves by b; a zero r takes b's sign. fmod(a, +-inf) is a for finite a
    (a - trunc(a / b) * b would give NaN there); zero divisors, infinite dividends and NaNs give NaN."""
    inf, zero = scalar(np.inf, dtype), scalar(0, dtype)
    q = ctx.emit(op.divide(a, b))
    r = ctx.emit(op.subtract(a, op.multiply(_trunc(q), b)))
    b_inf = op.logical_and(op.equal(op.abs(b), inf), op.less(op.abs(a), inf))
    r = ctx.emit(op.where(b_inf, a, r))
    b_negative = op.less(b, zero)
    moved = op.where(op.not_equal(op.less(r, zero), b_negative), op.add(r, b), r)
    signed_zero = op.where(b_negative, scalar(-0.0, dtype), zero)
    return op.where(op.equal(r, zero), signed_zero, moved)


# -- variadic -------------------------------------------------------------------------------------------


def _variadic(graph_op: str, mean: bool = False):
    build = getattr(op, graph_op)

    def convert(ctx: Context, node: Node):
        names = [n for n in node.inputs if n]
        if not names:
            raise node.unsupported("needs at least one input")
        result = ctx.expr(names[0])
        for name in names[1:]:
            result = build(result, ctx.expr(name))
        if mean:
            result = op.divide(result, scalar(len(names), ctx.dtype(names[0])))
        elif len(names) == 1:
            result = op.add(result, scalar(0, ctx.dtype(names[0])))  # a fresh value, not an alias
        return result

    return convert


register_simple("Sum", _variadic("add"))
register_simple("Max", _variadic("maximum"))
register_simple("Min", _variadic("minimum"))
register_simple("Mean", _variadic("add", mean=True))


# -- Where, Clip ------------------------------------------------------------------------


def _fold_where(ctx: Context, node: Node):
    values = [ctx.known_value(name) for name in node.inputs]
    if any(v is None for v in values) or values[0].dtype == object:
        return None
    if not any(v.dtype == object for v in values[1:]):
        return None
    return [normalize_known(np.where(values[0], values[1].astype(object), values[2].astype(object)))]


register_simple(
    "Where",
    lambda ctx, node: op.where(*(ctx.expr(n) for n in node.inputs)),
    fold=_fold_where,
)


@converter("Clip")
def _clip(ctx: Context, node: Node):
    x = ctx.expr(node.inputs[0])
    if node.version < 11:
        raise node.unsupported("Clip before opset 11 is not supported")
    if node.input(1):
        x = op.maximum(x, ctx.expr(node.inputs[1]))
    if node.input(2):
        x = op.minimum(x, ctx.expr(node.inputs[2]))
    if not node.input(1) and not node.input(2):
        x = op.add(x, scalar(0, ctx.dtype(node.inputs[0])))
    return x
