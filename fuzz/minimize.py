"""Delta debugging of a failing test: shrink the pass sequence, the schedule steps, then the IR, keeping
the same bug.

The pass sequence and the schedule steps are reduced by removing chunks (ddmin), then single entries.
The IR is reduced by trying, root first, smaller replacements of one site at a time: a sequence without
one statement, a loop replaced by its body at the first iteration, an if by a branch, a let by its body
with the value substituted, an expression by a child of its dtype or by a constant 0 or 1. A candidate is
kept when it verifies and `still_fails(test)` holds. Everything is bounded by `budget` checks and
`seconds`. `still_fails` decides how a candidate runs: in process for exceptions and wrong results
(worker.py), in a separate process with a time limit for crashes and timeouts (isolated.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from shapeflow.errors import Error
from shapeflow.fuzz.oracles import TestCase, as_func
from shapeflow.fuzz.sites import replace_site, sites_of
from shapeflow.ir import expr as E
from shapeflow.ir.functor import substitute
from shapeflow.ir.text import to_text
from shapeflow.ir.tir import stmt as S
from shapeflow.ir.tir.function import PrimFunc


def _stmt_candidates(node) -> list:
    out = []
    if isinstance(node, S.SeqStmt):
        for k in range(len(node.seq)):
            out.append(S.seq(*(s for j, s in enumerate(node.seq) if j != k)))
    elif isinstance(node, S.For):
        out.append(substitute(node.body, {node.loop_var: node.min}))
    elif isinstance(node, S.IfThenElse):
        out.append(node.then_case)
        if node.else_case is not None:
            out.append(node.else_case)
    elif isinstance(node, S.LetStmt):
        out.append(substitute(node.body, {node.var: node.value}))
    elif isinstance(node, (S.Allocate, S.DeclBuffer)):
        out.append(node.body)
    elif isinstance(node, S.BlockRealize) and node.block.init is not None:
        b = node.block
        out.append(
            S.BlockRealize(
                node.iter_values,
                node.predicate,
                S.Block(b.name, b.iter_vars, b.reads, b.writes, b.body, None, b.alloc_buffers, b.annotations),
            )
        )
    return out


def _expr_candidates(node) -> list:
    if not node.dtype.is_scalar or node.dtype.is_handle:
        return []
    out = []
    for f in ("a", "b", "value", "true_value", "false_value", "body"):
        child = getattr(node, f, None)
        if isinstance(child, E.PrimExpr) and child.dtype == node.dtype:
            out.append(child)
    out += [a for a in getattr(node, "args", ()) if a.dtype == node.dtype]
    if not isinstance(node, (E.IntImm, E.FloatImm)):
        out += [E.make_const(node.dtype, 0), E.make_const(node.dtype, 1)]
    return out


def _shrink_list(best: TestCase, field: str, try_test) -> TestCase:
    """ddmin over the list `field` of the test: remove chunks of halving size while the bug stays."""
    chunk = max(1, len(getattr(best, field)) // 2)
    while chunk >= 1 and getattr(best, field):
        items, k, changed = getattr(best, field), 0, False
        while k < len(items):
            candidate = dataclasses.replace(best, **{field: items[:k] + items[k + chunk :]})
            if try_test(candidate):
                best, items, changed = candidate, candidate.__dict__[field], True
            else:
                k += chunk
        if not changed:
            chunk //= 2
    return best


def _size(func: PrimFunc) -> int:
    return len(sites_of(func))


def minimize(
    test: TestCase,
    still_fails: Callable[[TestCase], bool],
    budget: int = 400,
    seconds: float = 60.0,
) -> TestCase:
    """A smaller test on which `still_fails` holds (the original when nothing smaller does)."""
    from shapeflow.ir.tir.verify import verify  # noqa: PLC0415

    deadline = time.monotonic() + seconds
    checks = [0]

    def try_test(candidate: TestCase) -> bool:
        if checks[0] >= budget or time.monotonic() > deadline:
            return False
        checks[0] += 1
        try:
            return bool(still_fails(candidate))
        except Exception:
            return False

    best = test
    # 1. The pass sequence and the schedule steps: chunks, then single entries.
    for field in ("passes", "schedule"):
        best = _shrink_list(best, field, try_test)
    # 2. The IR, site by site, root first; restart after every success.
    func = best.func()
    progress = True
    while progress and checks[0] < budget and time.monotonic() < deadline:
        progress = False
        for site in sites_of(func):
            node = site.node
            cands = _stmt_candidates(node) if isinstance(node, S.Stmt) else _expr_candidates(node)
            for cand in cands:
                try:
                    new = replace_site(func, site.index, lambda s, c=cand: c)
                    verify(new)
                    text = to_text(new)
                except Error:
                    continue
                except Exception:
                    continue
                candidate = dataclasses.replace(best, ir=text)
                if _size(new) < _size(func) and try_test(candidate):
                    best, func, progress = candidate, as_func(new), True
                    break
            if progress or checks[0] >= budget:
                break
    return best


__all__ = ["minimize"]
