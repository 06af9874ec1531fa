"""Run-time shape guards, derived from each op's own type inference.

A kernel made from an op trusts the shape relations its op needs: matmul reads both operands along the
first one's contracted length, a broadcast reads a dim of size n as if it were 1 or the output's, concat
copies its operands' non-axis dims as the first one's, a slice reads from `begin` on. When inference
proves such a relation there is nothing to check; when it refutes one it is a ShapeError at build time; and
when it can do neither (symbolic dims from different parameters), the relation must be checked at run time,
before any kernel sees the arrays, or the kernel would read out of bounds.

Which relations an op needs is written once, in its inference (ir/graph/ops): the unproved ones go to
`shapeflow.ir.graph.shape.require` (through `must_equal`, `must_be_at_most`, `broadcast_dim`). Here we run
every op call's inference again under `record_requirements()` and turn what it records into `Guard`s,
which the VM codegen emits as `assert_eq` / `assert_bcast` / `assert_le` steps as soon as their symbolic
dims are in the shape heap. Nothing is kept per op.

The kernels assert the same requirements themselves (ir/graph/legalize.py), which covers what the entry
checks cannot see (ops inside If branches, kernels called directly); the VM's checks come first and give
the better message (function, binding, dims). Data-dependent conditions (an index tensor's values) cannot be
checked here at all: those ops declare `index_checks` and their kernels assert them (ir/graph/ops/index.py).
"""

from __future__ import annotations

import dataclasses

from shapeflow.errors import Error, UnsupportedError
from shapeflow.ir.expr import PrimExpr
from shapeflow.ir.module import IRModule

# call_tir and call_dps_library are already kernels: their inference only types the declared outputs.
_SKIPPED_OPS = ("call_tir", "call_dps_library")


@dataclasses.dataclass(frozen=True)
class Guard:
    """A run-time condition on the shape heap (see `shapeflow.ir.graph.shape.Requirement` for the kinds);
    `where` names the binding and the op ("lv3 (matmul)"), `what` says what went wrong."""

    kind: str
    where: str
    dimension: int | None
    value: PrimExpr
    other: PrimExpr
    what: str


def shape_guards(mod: IRModule) -> dict[str, list[Guard]]:
    """{graph function name: its guards}, for the op calls among each function's top-level bindings (values
    inside If branches run only when taken, so their requirements are not checked on entry)."""
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415
    from shapeflow.passes.graph import Normalize  # noqa: PLC0415

    # Normal form binds every nested call to a variable with its type, so each call is seen with its
    # arguments' types. Symbolic Vars are kept, so guards speak of the Vars the VM stores in its heap.
    mod = Normalize()(mod)
    out: dict[str, list[Guard]] = {}
    for name, func in mod.items():
        if not isinstance(func, G.GraphFunction) or not isinstance(func.body, G.SeqExpr):
            continue
        guards: list[Guard] = []
        seen: set[tuple] = set()
        for block in func.body.blocks:
            for b in block.bindings:
                for guard in _call_guards(b.var.name, b.value, mod):
                    key = (guard.kind, str(guard.value), str(guard.other))
                    if key not in seen:
                        seen.add(key)
                        guards.append(guard)
        out[name] = guards
    return out


def _call_guards(binding: str, value, mod: IRModule) -> list[Guard]:
    from shapeflow.ir.graph import expr as G  # noqa: PLC0415
    from shapeflow.ir.graph.infer import type_of  # noqa: PLC0415
    from shapeflow.ir.graph.ops.registry import infer_call_type, is_registered  # noqa: PLC0415
    from shapeflow.ir.graph.shape import record_requirements  # noqa: PLC0415

    if not isinstance(value, G.Call) or not isinstance(value.op, G.Op):
        return []
    op = value.op.name
    if op in _SKIPPED_OPS or not is_registered(op):
        return []
    try:
        arg_types = [type_of(a, mod) for a in value.args]
        with record_requirements() as found:
            infer_call_type(value, arg_types)
    except (Error, UnsupportedError):
        return []  # ill-typed calls are the verifier's to report; Normalize already did
    where = f"{binding} ({op})"
    return [Guard(r.kind, where, r.dimension, r.value, r.other, r.what) for r in found]
