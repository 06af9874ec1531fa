"""Recognizing the accumulator update of a float reduction, the one place the default float mode reassociates.

A reduction's update is the store `acc[idx] = acc[idx] op value` (or `value op acc[idx]`), op one of
+, *, min, max, inside a loop whose iterations all update the same element (`idx` is invariant over it).
LLVM can only vectorize such a loop when it may reorder the chain of updates, which is what the `reassoc`
flag on that one operation allows. Its operands (`value`, the load of `acc[idx]`) are emitted with the
ordinary flags, so no other arithmetic can be refolded: `reassoc` on one instruction does not license
rewriting a neighbour that lacks it. Reordering the updates changes finite sums and products by rounding
(and can move an intermediate overflow), but a NaN or infinite term still makes the result NaN or
infinite, as no nnan/ninf flag is used.
"""

from __future__ import annotations

from shapeflow.ir.expr import Add, BufferLoad, Max, Min, Mul, PrimExpr, Var
from shapeflow.ir.functor import collect
from shapeflow.ir.structural import structural_equal
from shapeflow.ir.tir.stmt import BufferStore

# The ops whose accumulator updates may be reordered: associative and commutative up to rounding.
REDUCTION_OPS = (Add, Mul, Min, Max)


def _is_accumulator(expr: PrimExpr, store: BufferStore) -> bool:
    return (
        isinstance(expr, BufferLoad)
        and expr.buffer is store.buffer
        and len(expr.indices) == len(store.indices)
        and all(structural_equal(a, b) for a, b in zip(expr.indices, store.indices))
    )


def _index_vars(store: BufferStore) -> set:
    found: set = set()
    for index in store.indices:
        found.update(collect(index, Var))
    return found


def reduction_update(store: BufferStore, loop_scopes: list[set]) -> PrimExpr | None:
    """The float expression `acc[idx] op value` when `store` is a reduction's accumulator update inside
    one of the enclosing loops `loop_scopes` (each the set of variables that vary with that loop), else
    None."""
    value = store.value
    if not (isinstance(value, REDUCTION_OPS) and value.dtype.is_float and loop_scopes):
        return None
    if not (_is_accumulator(value.a, store) or _is_accumulator(value.b, store)):
        return None
    used = _index_vars(store)
    if any(not (used & scope) for scope in loop_scopes):
        return value
    return None


__all__ = ["REDUCTION_OPS", "reduction_update"]
