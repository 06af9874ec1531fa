"""Pass-sequence mutation: sequences over every registered pass, with random options.

A sequence is a list of `[name, options]` pairs (JSON-friendly, so it is stored in the corpus as text).
Options are drawn by introspecting each pass's dataclass fields: bools flip, ints take small or boundary
values, anything else keeps its default.
"""

from __future__ import annotations

import dataclasses
import random

from shapeflow.passes import PASSES, get_pass
from shapeflow.passes.infra import Pass

_INTS = (0, 1, 2, 3, 4, 8, 16, 64)


def _is_type(annotation, name: str) -> bool:
    return annotation == name or getattr(annotation, "__name__", None) == name


def random_options(name: str, rng: random.Random) -> dict:
    options = {}
    for f in dataclasses.fields(PASSES[name]):
        if rng.randint(0, 2) == 0:
            continue  # keep some defaults
        if _is_type(f.type, "bool"):
            options[f.name] = bool(rng.randint(0, 1))
        elif _is_type(f.type, "int"):
            options[f.name] = rng.choice(_INTS)
    return options


def pass_pool(level: str = "tir") -> list[str]:
    """Registered pass names of one level: "graph" (names `graph.*`, run on graph modules) or "tir" (the
    rest). A loop-level test drawing graph passes would waste its runs on passes that skip PrimFuncs."""
    graph = [n for n in sorted(PASSES) if n.startswith("graph.")]
    return graph if level == "graph" else [n for n in sorted(PASSES) if n not in graph]


def random_pass(rng: random.Random, level: str = "tir") -> list:
    name = rng.choice(pass_pool(level))
    return [name, random_options(name, rng)]


def default_sequence() -> list:
    """The lowering pipeline at opt level 2 as a sequence (what a user's build runs)."""
    from shapeflow.passes.tir.pipeline import lower_pipeline  # noqa: PLC0415

    return [[p.name, _changed_options(p)] for p in lower_pipeline(2).passes]


def _changed_options(p: Pass) -> dict:
    out = {}
    for f in dataclasses.fields(p):
        value = getattr(p, f.name)
        if f.default is not dataclasses.MISSING and value != f.default:
            out[f.name] = value
    return out


def build_passes(sequence: list) -> list[Pass]:
    """Pass objects for a stored sequence (unknown passes or options, e.g. from an old corpus, skipped)."""
    out = []
    for name, options in sequence:
        try:
            out.append(get_pass(name, **options))
        except Exception:
            continue
    return out


def default_graph_sequence(opt_level: int = 2) -> list:
    """The graph pipeline at `opt_level` as a sequence."""
    from shapeflow.passes.graph.pipeline import graph_pipeline  # noqa: PLC0415

    return [[p.name, _changed_options(p)] for p in graph_pipeline(opt_level).passes]


def mutate_sequence(
    sequence: list, rng: random.Random, others: list | None = None, level: str = "tir"
) -> list:
    """One of: add, delete, replace (another pass or other options), crossover with another sequence;
    new passes come from `pass_pool(level)`."""
    seq = [list(item) for item in sequence]
    ops = ["add", "add", "replace", "options"]
    if seq:
        ops.append("delete")
    if others:
        ops.append("crossover")
    op = rng.choice(ops)
    if op == "add" or not seq:
        seq.insert(rng.randint(0, len(seq)), random_pass(rng, level))
    elif op == "delete":
        del seq[rng.randrange(len(seq))]
    elif op == "replace":
        seq[rng.randrange(len(seq))] = random_pass(rng, level)
    elif op == "options":
        k = rng.randrange(len(seq))
        seq[k] = [seq[k][0], random_options(seq[k][0], rng)]
    else:
        other = rng.choice(others)
        cut_a, cut_b = rng.randint(0, len(seq)), rng.randint(0, len(other))
        seq = seq[:cut_a] + [list(x) for x in other[cut_b:]]
    return seq[:12]


def drop_useless(sequence: list, pass_new_arcs: list[int], later_new: int = 0) -> list:
    """The sequence without the passes that reached no new arcs (`pass_new_arcs[k]` counts them for pass
    k) after the last one that did. Only trailing passes go: a pass that reached nothing new itself may
    still make the IR that a later pass's new arcs depend on. When no pass reached new arcs, or a stage
    after the passes did (`later_new`: the round trip, the run, the compiler see the whole sequence's
    output), the sequence is kept whole."""
    if len(pass_new_arcs) != len(sequence) or later_new > 0:
        return sequence
    last = max((k for k, new in enumerate(pass_new_arcs) if new > 0), default=-1)
    return sequence[: last + 1] if last >= 0 else sequence


__all__ = [
    "pass_pool",
    "default_graph_sequence",
    "random_options",
    "random_pass",
    "default_sequence",
    "build_passes",
    "mutate_sequence",
    "drop_useless",
]
