"""The converter table: one entry per ONNX op type, each with the opset versions it handles.

    @converter("Relu")
    def relu(ctx, node): return op.relu(ctx.expr(node.inputs[0]))

    @converter("Squeeze", since=13, fold=fold_squeeze)      # axes as an input from opset 13 on
    def squeeze13(ctx, node): ...

A converter receives the import context and a `Node` view and returns the node's outputs (a graph
expression, a `Known` value, or a list of them). `fold`, when given, evaluates the node at import time on
known values (numeric constants, or tuples of symbolic dims produced by `Shape`); it returns None when it
cannot, and the converter runs instead. Which entry handles a node is decided by the version of the op's
ONNX schema at the model's opset: the entry with the largest `since` not above it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from shapeflow.errors import UnsupportedError


@dataclasses.dataclass(frozen=True, slots=True)
class Known:
    """A value known at import time: a numpy array, numeric or of dtype object holding int64 PrimExprs."""

    array: np.ndarray


@dataclasses.dataclass(frozen=True, slots=True)
class Converter:
    op_type: str
    since: int
    convert: Callable
    fold: Callable | None = None


CONVERTERS: dict[str, list[Converter]] = {}


def converter(op_type: str, since: int = 1, fold: Callable | None = None):
    """Register the decorated function as the converter of `op_type` from opset version `since` on."""

    def register(fn: Callable) -> Callable:
        entries = CONVERTERS.setdefault(op_type, [])
        if any(e.since == since for e in entries):
            raise ValueError(f"ONNX op {op_type} (since {since}) has two converters")
        entries.append(Converter(op_type, since, fn, fold))
        entries.sort(key=lambda e: e.since)
        return fn

    return register


def register_simple(op_type: str, fn: Callable, since: int = 1, fold: Callable | None = None) -> None:
    converter(op_type, since, fold)(fn)


def lookup(op_type: str, version: int) -> Converter:
    """The converter for `op_type` at schema version `version`; UnsupportedError naming op and opset."""
    entries = CONVERTERS.get(op_type)
    if not entries:
        raise UnsupportedError(f"ONNX op '{op_type}' is not supported")
    usable = [e for e in entries if e.since <= version]
    if not usable:
        raise UnsupportedError(
            f"ONNX op '{op_type}' version {version} is not supported (supported from {entries[0].since})"
        )
    return usable[-1]


def supported_ops() -> list[str]:
    """The ONNX op types with a converter."""
    return sorted(CONVERTERS)
