"""Schedule-primitive mutation: random legal TensorIR-style primitives on the blocks of a test's PrimFunc.

A test's `schedule` is a list of steps (JSON dicts naming a primitive, a block by name, loops by their
position in `get_loops(block)`, and the primitive's options). The steps are not baked into the test's IR:
the oracle (oracles.py) applies them to the parsed program under coverage, and compares the scheduled
program against the reference interpreter on the unscheduled one. That keeps the schedule code measured
(a step applied here, in the mutator, would reach no arc the campaign sees) and makes every schedule step a
checked claim: "this primitive keeps the meaning".

`random_schedule` draws steps and keeps only those the primitives accept (a refused draw is retried with
another), so stored schedules are legal for the IR they were drawn on; after a later IR mutation a step may
no longer apply, and the oracle then counts the test as invalid (ScheduleError is the documented answer of
a primitive that does not apply, never a bug).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from shapeflow.errors import ScheduleError
from shapeflow.ir.tir.function import PrimFunc

SCOPES = ("global", "local", "shared")
STEP_BUILDERS: dict[str, Callable] = {}


def step_builder(fn: Callable) -> Callable:
    """Register `fn(sch, block_name, loops, rng) -> step dict | None` under the primitive's name."""
    STEP_BUILDERS[fn.__name__.removeprefix("draw_")] = fn
    return fn


def _blocks(sch) -> list[str]:
    return [b for b in sch.block_names() if b != "root"]


@step_builder
def draw_split(sch, block, loops, rng):
    if not loops:
        return None
    f = rng.choice([1, 2, 3, 4, 8])
    factors = rng.choice([[None, f], [f, None], [None, f, 2]])
    tail = rng.choice(["predicate", "partition"])
    return {"loop": rng.randrange(len(loops)), "factors": factors, "tail": tail}


@step_builder
def draw_fuse(sch, block, loops, rng):
    if len(loops) < 2:
        return None
    return {"loop": rng.randrange(len(loops) - 1)}


@step_builder
def draw_reorder(sch, block, loops, rng):
    if len(loops) < 2:
        return None
    order = list(range(len(loops)))
    rng.shuffle(order)
    return {"loops": order[: rng.randint(2, len(loops))]}


def _one_loop(sch, block, loops, rng):
    return {"loop": rng.randrange(len(loops))} if loops else None


STEP_BUILDERS.update(parallel=_one_loop, vectorize=_one_loop, unroll=_one_loop)


def _at(consumers: bool):
    def draw(sch, block, loops, rng):
        target = rng.choice(sch.related_blocks(block, consumers) or _blocks(sch))
        target_loops = sch.get_loops(sch.get_block(target))
        if not target_loops:
            return None
        return {"target": target, "loop": rng.randrange(len(target_loops))}

    return draw


STEP_BUILDERS.update(compute_at=_at(True), reverse_compute_at=_at(False))
STEP_BUILDERS.update(compute_inline=lambda *a: {}, reverse_compute_inline=lambda *a: {})


@step_builder
def draw_cache_read(sch, block, loops, rng):
    return {"index": rng.randint(0, 2), "scope": rng.choice(SCOPES)}


@step_builder
def draw_cache_write(sch, block, loops, rng):
    return {"index": 0, "scope": rng.choice(SCOPES)}


@step_builder
def draw_decompose_reduction(sch, block, loops, rng):
    return _one_loop(sch, block, loops, rng)


@step_builder
def draw_rfactor(sch, block, loops, rng):
    if not loops:
        return None
    return {"loop": rng.randrange(len(loops)), "factor_axis": rng.randint(0, 1)}


@step_builder
def draw_storage_align(sch, block, loops, rng):
    factor = rng.randint(1, 8)
    return {"factor": factor, "offset": rng.randrange(factor)}


@step_builder
def draw_transform_layout(sch, block, loops, rng):
    return {"factor": rng.randint(1, 4)}


@step_builder
def draw_pad(sch, block, loops, rng):
    realize, _ = sch.find_block(block)
    return {"padding": [rng.randint(1, 4) for _ in realize.block.iter_vars]}


# -- applying a step ---------------------------------------------------------------------------------


def _loop(loops: list, k) -> object:
    if not isinstance(k, int) or not 0 <= k < len(loops):
        raise ScheduleError(f"the block has {len(loops)} loops, the step names loop {k}", rule="fuzz: step")
    return loops[k]


def _split_layout(f: int):
    return lambda i, *rest: (i // f, *rest, i % f)


APPLIERS: dict[str, Callable] = {
    "split": lambda sch, b, ls, s: sch.split(_loop(ls, s["loop"]), s["factors"], tail=s["tail"]),
    "fuse": lambda sch, b, ls, s: sch.fuse(_loop(ls, s["loop"]), _loop(ls, s["loop"] + 1)),
    "reorder": lambda sch, b, ls, s: sch.reorder(*(_loop(ls, k) for k in s["loops"])),
    "parallel": lambda sch, b, ls, s: sch.parallel(_loop(ls, s["loop"])),
    "vectorize": lambda sch, b, ls, s: sch.vectorize(_loop(ls, s["loop"])),
    "unroll": lambda sch, b, ls, s: sch.unroll(_loop(ls, s["loop"])),
    "compute_at": lambda sch, b, ls, s: sch.compute_at(
        b, _loop(sch.get_loops(sch.get_block(s["target"])), s["loop"])
    ),
    "reverse_compute_at": lambda sch, b, ls, s: sch.reverse_compute_at(
        b, _loop(sch.get_loops(sch.get_block(s["target"])), s["loop"])
    ),
    "compute_inline": lambda sch, b, ls, s: sch.compute_inline(b),
    "reverse_compute_inline": lambda sch, b, ls, s: sch.reverse_compute_inline(b),
    "cache_read": lambda sch, b, ls, s: sch.cache_read(b, s["index"], s["scope"]),
    "cache_write": lambda sch, b, ls, s: sch.cache_write(b, s["index"], s["scope"]),
    "decompose_reduction": lambda sch, b, ls, s: sch.decompose_reduction(b, _loop(ls, s["loop"])),
    "rfactor": lambda sch, b, ls, s: sch.rfactor(_loop(ls, s["loop"]), s["factor_axis"]),
    "storage_align": lambda sch, b, ls, s: sch.storage_align(b, 0, 0, s["factor"], s["offset"]),
    "transform_layout": lambda sch, b, ls, s: sch.transform_layout(b, 0, _split_layout(s["factor"])),
    "pad": lambda sch, b, ls, s: sch.pad(b, s["padding"]),
}


def apply_step(sch, step: dict) -> None:
    """Apply one stored step to `sch`; ScheduleError when it does not apply (any more)."""
    prim = step.get("p")
    if prim not in APPLIERS:
        raise ScheduleError(f"unknown schedule step {prim!r}", rule="fuzz: step")
    block = sch.get_block(step["block"])
    try:
        APPLIERS[prim](sch, block, sch.get_loops(block), step)
    except (KeyError, TypeError) as exc:  # a hand-edited or truncated step in a stored test
        raise ScheduleError(f"malformed {prim} step {step}: {exc}", rule="fuzz: step") from None


def apply_schedule(func: PrimFunc, steps: list) -> PrimFunc:
    """`func` with `steps` applied in order (ScheduleError from the first step that does not apply)."""
    from shapeflow.passes.schedule import Schedule  # noqa: PLC0415

    if not steps:
        return func
    sch = Schedule(func)
    for step in steps:
        apply_step(sch, step)
    return sch.func


def random_schedule(func: PrimFunc, rng: random.Random, prior: list = (), steps: int = 2, tries: int = 12):
    """New legal steps to append to `prior` (already legal on `func`): up to `steps` accepted draws out
    of `tries`. Returns [] when `func` has no block or nothing applied."""
    from shapeflow.passes.schedule import Schedule  # noqa: PLC0415

    try:
        sch = Schedule(func)
        for step in prior:
            apply_step(sch, step)
    except ScheduleError:
        return []
    out: list[dict] = []
    for _ in range(tries):
        if len(out) >= steps:
            break
        blocks = _blocks(sch)
        if not blocks:
            return out
        prim, block = rng.choice(sorted(STEP_BUILDERS)), rng.choice(blocks)
        try:
            drawn = STEP_BUILDERS[prim](sch, block, sch.get_loops(sch.get_block(block)), rng)
        except ScheduleError:
            continue
        if drawn is None:
            continue
        step = {"p": prim, "block": block, **drawn}
        try:
            apply_step(sch, step)
        except ScheduleError:
            continue  # a refused primitive left `sch` as it was: draw another
        except Exception:  # noqa: BLE001  a primitive's own fault: the oracle meets it again and reports it
            out.append(step)
            return out
        out.append(step)
    return out


__all__ = ["STEP_BUILDERS", "APPLIERS", "apply_step", "apply_schedule", "random_schedule"]
