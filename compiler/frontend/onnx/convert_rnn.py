"""ONNX RNN, GRU and LSTM, unrolled over a sequence length known at import time.

The input projection of every step is one matmul over the whole sequence; each step then adds its
recurrent matmul and applies the gates with ordinary graph ops, so the recurrence is a chain of small
kernels that fusion merges per step. A symbolic sequence length is refused (UnsupportedError naming it);
so are more than MAX_STEPS steps (the graph grows with each). `sequence_lens` is honoured for the forward
direction (a batch entry's state stops changing after its length and its outputs there are zero); with
reverse or bidirectional it is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from shapeflow.frontend.onnx.context import Context, Node, scalar
from shapeflow.frontend.onnx.registry import converter
from shapeflow.ir.graph import op
from shapeflow.ir.graph.infer import type_of
from shapeflow.ir.graph.shape import as_int

MAX_STEPS = 512


def _affine(x, alpha, beta):
    return op.add(op.multiply(x, alpha), beta)


# name -> (graph expression of x, alpha, beta; default alpha; default beta)
ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "Tanh": (lambda x, a, b: op.tanh(x), None, None),
    "Sigmoid": (lambda x, a, b: op.sigmoid(x), None, None),
    "Relu": (lambda x, a, b: op.relu(x), None, None),
    "Affine": (_affine, 1.0, 0.0),
    "LeakyRelu": (lambda x, a, b: op.where(op.less(x, 0.0), op.multiply(x, a), x), 0.01, None),
    "HardSigmoid": (lambda x, a, b: op.clip(_affine(x, a, b), min=0.0, max=1.0), 0.2, 0.5),
    "ScaledTanh": (lambda x, a, b: op.multiply(op.tanh(op.multiply(x, b)), a), 1.0, 1.0),
    "Softsign": (lambda x, a, b: op.divide(x, op.add(op.abs(x), 1.0)), None, None),
}


@dataclasses.dataclass(frozen=True)
class Cell:
    """What differs between the three ops: gate count, default activations, the step function."""

    gates: int
    activations: tuple[str, ...]
    outputs: int


CELLS = {
    "RNN": Cell(1, ("Tanh",), 2),
    "GRU": Cell(3, ("Sigmoid", "Tanh"), 2),
    "LSTM": Cell(4, ("Sigmoid", "Tanh", "Tanh"), 3),
}


def _activations(node: Node, cell: Cell, directions: int) -> list[list[Callable]]:
    """Per direction, the activation functions as graph builders of one argument."""
    names = node.attr("activations", None)
    names = list(names) if names else list(cell.activations) * directions
    if len(names) != len(cell.activations) * directions:
        want = len(cell.activations) * directions
        raise node.unsupported(f"{len(names)} activations given, expected {want}")
    alphas = list(node.attr("activation_alpha", []) or [])
    betas = list(node.attr("activation_beta", []) or [])
    out = []
    for name in names:
        entry = ACTIVATIONS.get(name) or ACTIVATIONS.get(name.capitalize())
        if entry is None:
            raise node.unsupported(f"activation {name!r} is not supported")
        fn, alpha, beta = entry
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        out.append(lambda x, fn=fn, a=alpha, b=beta: fn(x, a, b))
    per = len(cell.activations)
    return [out[d * per : (d + 1) * per] for d in range(directions)]


class _Builder:
    """Emits graph ops into the import context."""

    def __init__(self, ctx: Context, dtype):
        self.ctx = ctx
        self.dtype = dtype

    def emit(self, expr):
        return self.ctx.emit(expr)

    def take(self, x, index: int, axis: int):
        return self.emit(op.take(x, np.array(index, dtype=np.int64), axis=axis))

    def part(self, x, i: int, size: int):
        """Slice i (of width `size`) of the last axis."""
        last = len(type_of(x).shape) - 1
        return self.emit(
            op.strided_slice(x, axes=(last,), begin=(i * size,), end=((i + 1) * size,), strides=(1,))
        )

    def const(self, value):
        return scalar(value, self.dtype)


def _step_rnn(b: _Builder, acts, gates_x, h, c, r_t, rb, hidden, clip, extra):
    pre = b.emit(op.add(op.add(gates_x, op.matmul(h, r_t)), rb))
    return b.emit(acts[0](_clip(b, pre, clip))), None


def _clip(b: _Builder, x, clip):
    return x if clip is None else b.emit(op.clip(x, min=-clip, max=clip))


def _step_gru(b: _Builder, acts, gates_x, h, c, r_t, rb, hidden, clip, extra):
    f, g = acts
    linear_before_reset = extra["linear_before_reset"]
    r_z, r_r, r_h = (b.part(r_t, i, hidden) for i in range(3))
    rb_z, rb_r, rb_h = (b.part(rb, i, hidden) for i in range(3))
    x_z, x_r, x_h = (b.part(gates_x, i, hidden) for i in range(3))
    z = b.emit(f(_clip(b, b.emit(op.add(op.add(x_z, op.matmul(h, r_z)), rb_z)), clip)))
    r = b.emit(f(_clip(b, b.emit(op.add(op.add(x_r, op.matmul(h, r_r)), rb_r)), clip)))
    if linear_before_reset:
        recur = op.multiply(r, op.add(op.matmul(h, r_h), rb_h))
    else:
        recur = op.add(op.matmul(b.emit(op.multiply(r, h)), r_h), rb_h)
    candidate = b.emit(g(_clip(b, b.emit(op.add(x_h, recur)), clip)))
    one = b.const(1.0)
    return b.emit(op.add(op.multiply(op.subtract(one, z), candidate), op.multiply(z, h))), None


def _step_lstm(b: _Builder, acts, gates_x, h, c, r_t, rb, hidden, clip, extra):
    f, g, hact = acts
    peep = extra["peepholes"]
    pre = b.emit(op.add(op.add(gates_x, op.matmul(h, r_t)), rb))
    p_i, p_o, p_f = (None, None, None) if peep is None else (b.part(peep, i, hidden) for i in range(3))
    x_i, x_o, x_f, x_c = (b.part(pre, i, hidden) for i in range(4))
    if p_i is not None:
        x_i = b.emit(op.add(x_i, op.multiply(p_i, c)))
        x_f = b.emit(op.add(x_f, op.multiply(p_f, c)))
    i_gate = b.emit(f(_clip(b, x_i, clip)))
    f_gate = b.emit(f(_clip(b, x_f, clip)))
    if extra["input_forget"]:
        f_gate = b.emit(op.subtract(b.const(1.0), i_gate))
    cand = b.emit(g(_clip(b, x_c, clip)))
    c_new = b.emit(op.add(op.multiply(f_gate, c), op.multiply(i_gate, cand)))
    if p_o is not None:
        x_o = b.emit(op.add(x_o, op.multiply(p_o, c_new)))
    o_gate = b.emit(f(_clip(b, x_o, clip)))
    return b.emit(op.multiply(o_gate, hact(c_new))), c_new


STEPS = {"RNN": _step_rnn, "GRU": _step_gru, "LSTM": _step_lstm}


def _stack(b: _Builder, values: list, axis: int):
    parts = [b.emit(op.expand_dims(v, axis=axis)) for v in values]
    return parts[0] if len(parts) == 1 else b.emit(op.concat(parts, axis=axis))


def _recurrent(ctx: Context, node: Node):
    cell = CELLS[node.op_type]
    x_name, w_name, r_name = node.inputs[:3]
    dtype = ctx.dtype(x_name)
    if not dtype.is_float:
        raise node.unsupported(f"dtype {dtype} is not supported (float inputs only)")
    direction = node.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise node.unsupported(f"direction {direction!r} is not supported")
    directions = 2 if direction == "bidirectional" else 1
    layout = node.attr("layout", 0)
    hidden = node.attr("hidden_size")
    clip = node.attr("clip", None)
    extra = {
        "linear_before_reset": node.attr("linear_before_reset", 0) if node.op_type == "GRU" else 0,
        "input_forget": node.attr("input_forget", 0) if node.op_type == "LSTM" else 0,
    }
    acts = _activations(node, cell, directions)
    b = _Builder(ctx, dtype)
    x = ctx.expr(x_name)
    if layout == 1:
        x = b.emit(op.permute_dims(x, axes=(1, 0, 2)))
    elif layout != 0:
        raise node.unsupported(f"layout {layout} is not supported")
    shape = ctx.shape(x_name)
    seq = as_int(shape[1] if layout else shape[0])
    batch = shape[0] if layout else shape[1]
    if seq is None:
        raise node.unsupported("a symbolic sequence length is not supported (the recurrence is unrolled)")
    if seq > MAX_STEPS or seq < 1:
        raise node.unsupported(f"sequence length {seq} is outside the unrolled range [1, {MAX_STEPS}]")
    w_shape = ctx.shape(w_name)
    if hidden is None:
        hidden = as_int(w_shape[1]) // cell.gates
    gates = cell.gates * hidden

    def optional_input(index):
        return node.input(index) if len(node.inputs) > index and node.input(index) else ""

    bias, lens, h0, c0 = optional_input(3), optional_input(4), optional_input(5), optional_input(6)
    peep = optional_input(7) if node.op_type == "LSTM" else ""
    if lens and direction != "forward":
        raise node.unsupported("sequence_lens with a reverse or bidirectional direction is not supported")
    mask_steps = None
    if lens:
        steps = b.emit(op.astype(ctx.expr(lens), "int64"))
        mask_steps = [b.emit(op.expand_dims(op.less(scalar(t, "int64"), steps), axis=1)) for t in range(seq)]
    zeros = b.emit(op.broadcast_to(b.const(0.0), (batch, hidden)))
    ys, hs, cs = [], [], []
    for d in range(directions):
        w = b.take(ctx.expr(w_name), d, 0)
        r = b.take(ctx.expr(r_name), d, 0)
        w_t = b.emit(op.permute_dims(w, axes=(1, 0)))
        r_t = b.emit(op.permute_dims(r, axes=(1, 0)))
        projected = b.emit(op.matmul(x, w_t))  # (seq, batch, gates)
        if bias:
            bvec = b.take(ctx.expr(bias), d, 0)
            wb = b.emit(op.strided_slice(bvec, axes=(0,), begin=(0,), end=(gates,), strides=(1,)))
            rb = b.emit(op.strided_slice(bvec, axes=(0,), begin=(gates,), end=(2 * gates,), strides=(1,)))
            projected = b.emit(op.add(projected, wb))
        else:
            rb = b.emit(op.broadcast_to(b.const(0.0), (gates,)))
        state_axis = 1 if layout == 1 else 0  # initial states are (batch, dirs, hidden) with layout 1
        h = b.take(ctx.expr(h0), d, state_axis) if h0 else zeros
        c = b.take(ctx.expr(c0), d, state_axis) if c0 else zeros
        extra["peepholes"] = b.take(ctx.expr(peep), d, 0) if peep else None
        reverse = direction == "reverse" or d == 1
        outputs = [None] * seq
        for step in range(seq):
            t = seq - 1 - step if reverse else step
            step_x = b.take(projected, t, 0)
            h_new, c_new = STEPS[node.op_type](b, acts[d], step_x, h, c, r_t, rb, hidden, clip, extra)
            if mask_steps is not None:
                keep = mask_steps[t]
                outputs[t] = b.emit(op.where(keep, h_new, zeros))
                h = b.emit(op.where(keep, h_new, h))
                c = b.emit(op.where(keep, c_new, c)) if c_new is not None else c
            else:
                outputs[t] = h_new
                h, c = h_new, (c_new if c_new is not None else c)
        ys.append(_stack(b, outputs, 0))  # (seq, batch, hidden)
        hs.append(h)
        cs.append(c)
    y = _stack(b, ys, 1)  # (seq, dirs, batch, hidden)
    y_h = _stack(b, hs, 0)  # (dirs, batch, hidden)
    y_c = _stack(b, cs, 0)
    if layout == 1:
        y = b.emit(op.permute_dims(y, axes=(2, 0, 1, 3)))
        y_h = b.emit(op.permute_dims(y_h, axes=(1, 0, 2)))
        y_c = b.emit(op.permute_dims(y_c, axes=(1, 0, 2)))
    return [y, y_h, y_c][: cell.outputs]


for _op_type in CELLS:
    converter(_op_type, since=7)(_recurrent)
