"""Mutators of graph recipes (graph_gen.py): each returns a new recipe, or None when it does not apply.

- swap_op: another registry op of the same arity and pattern (unary for unary, broadcast for broadcast);
  attributes the new op does not take are dropped, required ones it lacks make the swap inapplicable;
- change_attrs: another axis, keepdims flipped, other clip bounds / epsilon / dtype / permutation;
- insert_binding: a new random step somewhere in the middle (later steps keep their arguments);
- delete_binding: a step removed, its users rewired to its first argument;
- change_arg / change_output: another earlier value as an argument / as the returned value.

A mutant that no longer builds (type inference refuses it) is returned anyway: the campaign counts it as
invalid and does not run it, as with IR mutants that fail the verifier.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

from shapeflow.fuzz.graph_gen import RecipeGen, expand_step, value_types

GRAPH_MUTATORS: dict[str, Callable[[dict, random.Random], dict | None]] = {}


def graph_mutator(fn):
    GRAPH_MUTATORS[fn.__name__] = fn
    return fn


def _n_params(recipe: dict) -> int:
    return len(recipe["params"])


def _op_steps(recipe: dict) -> list[int]:
    return [k for k, s in enumerate(recipe["steps"]) if s["op"] != "const"]


def _swappable(name: str, arity: int) -> list[str]:
    from shapeflow.ir.graph.ops import get_op_def, list_ops  # noqa: PLC0415
    from shapeflow.ir.graph.ops.registry import REQUIRED  # noqa: PLC0415

    pattern = get_op_def(name).pattern
    out = []
    for other in list_ops():
        d = get_op_def(other)
        if other == name or d.legalize is None or d.pattern != pattern or d.num_args != arity:
            continue
        if any(a.default is REQUIRED for a in d.attrs):
            continue
        out.append(other)
    return out


@graph_mutator
def swap_op(recipe, rng):
    from shapeflow.ir.graph.ops import get_op_def  # noqa: PLC0415

    steps = _op_steps(recipe)
    if not steps:
        return None
    k = rng.choice(steps)
    step = recipe["steps"][k]
    choices = _swappable(step["op"], len(step["args"]))
    if not choices:
        return None
    new = copy.deepcopy(recipe)
    name = rng.choice(choices)
    known = {a.name for a in get_op_def(name).attrs}
    new["steps"][k] = {
        "op": name,
        "args": step["args"],
        "attrs": {a: v for a, v in step.get("attrs", {}).items() if a in known},
    }
    return new


@graph_mutator
def change_attrs(recipe, rng):
    steps = [k for k in _op_steps(recipe) if recipe["steps"][k].get("attrs")]
    if not steps:
        return None
    new = copy.deepcopy(recipe)
    attrs = new["steps"][rng.choice(steps)]["attrs"]
    name = rng.choice(sorted(attrs))
    value = attrs[name]
    if isinstance(value, bool):
        attrs[name] = not value
    elif name in ("axis",) or value is None:
        attrs[name] = rng.choice([None, -1, 0, 1, 2, -2]) if name == "axis" else rng.choice([0, 1, -1])
    elif isinstance(value, (int, float)):
        attrs[name] = rng.choice([value + 1, value - 1, -value, 0, value * 2])
        if isinstance(value, float):
            attrs[name] = float(attrs[name])
    elif isinstance(value, list):
        attrs[name] = list(reversed(value)) if rng.randint(0, 1) else [rng.choice([0, 1, -1])]
    elif isinstance(value, str):
        attrs[name] = rng.choice(["float16", "float32", "float64", "int32"])
    return new


def _shift_refs(step: dict, at: int, by: int) -> dict:
    if step["op"] == "const":
        return step
    return {**step, "args": [a + by if a >= at else a for a in step["args"]]}


@graph_mutator
def insert_binding(recipe, rng):
    np_ = _n_params(recipe)
    k = rng.randint(0, len(recipe["steps"]))
    head = {**recipe, "steps": recipe["steps"][:k], "output": 0}
    types = value_types(head)
    if types is None:
        return None
    step = RecipeGen(rng).step(head, types)
    added = expand_step(step, np_ + k)
    at = np_ + k
    tail = [_shift_refs(s, at, len(added)) for s in recipe["steps"][k:]]
    out = recipe["output"] + len(added) if recipe["output"] >= at else recipe["output"]
    if rng.randint(0, 2) == 0:
        out = at + len(added) - 1  # and return it
    elif tail and rng.randint(0, 1):  # let a later step use the new value
        j = rng.randrange(len(tail))
        if tail[j]["op"] != "const" and tail[j]["args"]:
            tail[j]["args"][rng.randrange(len(tail[j]["args"]))] = at + len(added) - 1
    return {**recipe, "steps": recipe["steps"][:k] + added + tail, "output": out}


def delete_step(recipe: dict, k: int) -> dict:
    """`recipe` without step `k`; its users read its first argument (or the first param) instead."""
    np_ = _n_params(recipe)
    at = np_ + k
    step = recipe["steps"][k]
    repl = step["args"][0] if step["op"] != "const" and step["args"] else 0

    def fix(a: int) -> int:
        if a == at:
            return repl
        return a - 1 if a > at else a

    steps = []
    for s in recipe["steps"][:k] + recipe["steps"][k + 1 :]:
        steps.append(s if s["op"] == "const" else {**s, "args": [fix(a) for a in s["args"]]})
    return {**recipe, "steps": steps, "output": fix(recipe["output"])}


@graph_mutator
def delete_binding(recipe, rng):
    if not recipe["steps"]:
        return None
    return delete_step(recipe, rng.randrange(len(recipe["steps"])))


@graph_mutator
def change_arg(recipe, rng):
    np_ = _n_params(recipe)
    steps = [k for k in _op_steps(recipe) if recipe["steps"][k]["args"]]
    if not steps:
        return None
    new = copy.deepcopy(recipe)
    k = rng.choice(steps)
    args = new["steps"][k]["args"]
    args[rng.randrange(len(args))] = rng.randrange(np_ + k)
    return new


@graph_mutator
def change_output(recipe, rng):
    total = _n_params(recipe) + len(recipe["steps"])
    return {**recipe, "output": rng.randrange(total)}


def mutate_recipe(recipe: dict, rng: random.Random, tries: int = 4) -> tuple[dict, str] | None:
    """One applicable mutation (by name, uniformly), or None after `tries` inapplicable draws."""
    names = sorted(GRAPH_MUTATORS)
    weights = [3 if n in ("swap_op", "insert_binding", "change_attrs") else 1 for n in names]
    for _ in range(tries):
        name = rng.choices(names, weights)[0]
        found = GRAPH_MUTATORS[name](recipe, rng)
        if found is not None:
            return found, name
    return None


__all__ = ["GRAPH_MUTATORS", "graph_mutator", "mutate_recipe", "delete_step"]
