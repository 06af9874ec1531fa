"""Random graph programs (Relax-style functions of registry ops over symbolic shapes) as *recipes*.

A recipe is plain JSON, so the corpus stores it next to the program's text and the mutators
(graph_mutate.py) edit it without knowing the IR:

    {"params": [{"name": "x", "shape": ["n", 4], "dtype": "float32"}, ...],
     "steps": [{"op": "tanh", "args": [0], "attrs": {}}, {"op": "const", "value": 0.5, "shape": [4]}, ...],
     "output": 5}

Values are numbered params first, then steps; a step's args name earlier values. `build_module` makes the
IRModule with the BlockBuilder (one dataflow block, every step bound to a variable), so type inference
checks every call: a recipe that does not build is invalid and is not run. `generate_recipe` only keeps
steps that built, so generated recipes always build.
"""

from __future__ import annotations

import random

import numpy as np

from shapeflow.errors import Error
from shapeflow.ir.expr import IntImm, Var
from shapeflow.ir.module import IRModule

GRAPH_DIM_BOUNDS = (1, 12)

UNARY = "abs ceil cos erf exp floor gelu gelu_tanh neg relu round rsqrt sigmoid sign silu sin sqrt".split()
UNARY += ["square", "tanh", "log"]
BINARY = "add subtract multiply divide maximum minimum".split()
COMPARE = "greater greater_equal less less_equal equal not_equal".split()
REDUCE = "sum mean max min".split()


def _param_specs(rng: random.Random) -> list[dict]:
    rows = rng.choice(["n", "n", "m", 3])
    params = [{"name": "x", "shape": [rows, 4], "dtype": "float32"}]
    params.append({"name": "w", "shape": [4, 4], "dtype": "float32"})
    params.append({"name": "b", "shape": [4], "dtype": "float32"})
    if rng.randint(0, 1):
        params.append({"name": "y", "shape": [rows, rng.choice([4, 1])], "dtype": "float32"})
    return params


def _dim(d, dims: dict) -> object:
    if isinstance(d, str):
        return dims.setdefault(d, Var(d))
    return d


def build_module(recipe: dict) -> IRModule:
    """The IRModule a recipe describes; shapeflow errors (VerifyError, ShapeError) when it is ill-typed."""
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, const  # noqa: PLC0415
    from shapeflow.ir.graph.ops import make_call  # noqa: PLC0415

    dims: dict[str, Var] = {}
    params = [
        GraphVar(p["name"], TensorType(tuple(_dim(d, dims) for d in p["shape"]), p["dtype"]))
        for p in recipe["params"]
    ]
    bb = BlockBuilder()
    bounds = {name: GRAPH_DIM_BOUNDS for name in dims}
    with bb.function("main", params, attrs={"var_bounds": bounds}):
        with bb.dataflow():
            values = list(params)
            for step in recipe["steps"]:
                values.append(bb.emit(_step_expr(step, values, const, make_call)))
            out = bb.emit_output(values[recipe["output"]])
        bb.emit_func_output(out)
    return bb.get()


def _step_expr(step: dict, values: list, const, make_call):
    if step["op"] == "const":
        return const(np.full(tuple(step["shape"]), step["value"], dtype=step.get("dtype", "float32")))
    args = []
    for a in step["args"]:
        if not 0 <= a < len(values):
            from shapeflow.errors import VerifyError  # noqa: PLC0415

            raise VerifyError(f"recipe step refers to value {a} of {len(values)}")
        args.append(values[a])
    return make_call(step["op"], args, step.get("attrs") or {})


class RecipeGen:
    """Steps that build, chosen with the shapes of the values built so far in view."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def step(self, recipe: dict, types: list) -> dict:
        """One random step over the values whose types are `types` (TensorTypes)."""
        rng = self.rng
        np_ = len(recipe["params"])
        steps = recipe["steps"]
        computed = [j for j in range(len(types)) if j < np_ or steps[j - np_]["op"] != "const"]
        # Favour recent computed values (a chain grows deep), sometimes any value (constants included).
        pool = computed if rng.randint(0, 4) else list(range(len(types)))
        k = pool[len(pool) - 1 - min(int(rng.expovariate(0.5)), len(pool) - 1)]
        v, t = k, types[k]
        rank = len(t.shape) if t.shape is not None else 0
        kind = rng.choice(
            ["unary"] * 4
            + ["binary"] * 4
            + ["reduce", "softmax", "matmul", "where", "norm"] * 1
            + ["permute", "const", "clip", "astype", "concat", "expand", "flatten"]
        )
        same = [j for j, u in enumerate(types) if u.shape is not None and _same_shape(u, t)]
        if kind == "unary":
            return {"op": rng.choice(UNARY), "args": [v], "attrs": {}}
        if kind == "binary":
            partner = rng.choice(same + [self._broadcastable(types, t)])
            if partner is None:
                partner = v
            args = [v, partner] if rng.randint(0, 1) else [partner, v]
            return {"op": rng.choice(BINARY), "args": args, "attrs": {}}
        if kind == "reduce" and rank:
            axis = rng.choice([None, rng.randrange(rank), -1])
            return {
                "op": rng.choice(REDUCE),
                "args": [v],
                "attrs": {"axis": axis, "keepdims": bool(rng.randint(0, 1))},
            }
        if kind == "softmax" and rank:
            return {
                "op": rng.choice(["softmax", "log_softmax"]),
                "args": [v],
                "attrs": {"axis": rng.randrange(-rank, rank)},
            }
        if kind == "matmul":
            return {"op": "matmul", "args": [v, 1], "attrs": {}}
        if kind == "where":
            partner = rng.choice(same)
            return {"op": "where", "args": [v, partner, v], "attrs": {}, "cond": rng.choice(COMPARE)}
        if kind == "norm":
            if rng.randint(0, 1):
                return {"op": "layer_norm", "args": [v, 2, 2], "attrs": {"axes": [-1], "epsilon": 1e-5}}
            return {"op": "rms_norm", "args": [v, 2], "attrs": {"axes": [-1], "epsilon": 1e-5}}
        if kind == "permute" and rank >= 2:
            axes = list(range(rank))
            rng.shuffle(axes)
            return {"op": "permute_dims", "args": [v], "attrs": {"axes": axes}}
        if kind == "const":
            value = rng.choice([0.5, -1.0, 2.0, 0.0, 3.25])
            return {"op": "const", "value": value, "shape": rng.choice([[4], [1], [1, 4]])}
        if kind == "clip":
            lo = rng.choice([-2.0, -0.5, 0.0])
            return {"op": "clip", "args": [v], "attrs": {"min": lo, "max": lo + rng.choice([0.5, 1.0, 4.0])}}
        if kind == "astype":
            return {
                "op": "astype",
                "args": [v],
                "attrs": {"dtype": rng.choice(["float16", "float32", "float64"])},
            }
        if kind == "concat":
            return {
                "op": "concat",
                "args": [v, rng.choice(same)],
                "attrs": {"axis": rng.randrange(max(rank, 1))},
            }
        if kind == "expand" and rank:
            return {"op": "expand_dims", "args": [v], "attrs": {"axis": rng.randrange(rank + 1)}}
        if kind == "flatten" and rank >= 2:
            return {"op": "flatten", "args": [v], "attrs": {}}
        return {"op": rng.choice(UNARY), "args": [v], "attrs": {}}

    def _broadcastable(self, types: list, t) -> int | None:
        cands = [j for j, u in enumerate(types) if u.shape is not None and _broadcasts(u, t)]
        return self.rng.choice(cands) if cands else None


def _same_shape(a, b) -> bool:
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415

    return (
        a.dtype == b.dtype
        and len(a.shape) == len(b.shape)
        and structural_equal(tuple(a.shape), tuple(b.shape))
    )


def _broadcasts(u, t) -> bool:
    """Whether `u` broadcasts against `t` (trailing dims equal or 1, no more dims than `t`)."""
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415

    if u.dtype != t.dtype or len(u.shape) > len(t.shape):
        return False
    for a, b in zip(reversed(u.shape), reversed(t.shape)):
        if not (isinstance(a, IntImm) and a.value == 1) and not structural_equal(a, b):
            return False
    return True


def expand_step(step: dict, index: int) -> list[dict]:
    """A `where` step with a comparison becomes two steps (the comparison, then the where on it)."""
    if step["op"] != "where" or "cond" not in step:
        return [step]
    a, b, c = step["args"]
    return [
        {"op": step["cond"], "args": [a, b], "attrs": {}},
        {"op": "where", "args": [index, b, c], "attrs": {}},
    ]


def value_types(recipe: dict) -> list | None:
    """The types of every value of a recipe (None when it does not build)."""
    try:
        mod = build_module(recipe)
    except Error:
        return None
    func = mod["main"]
    types = [p.type for p in func.params]
    for block in func.body.blocks:
        types.extend(b.var.type for b in block.bindings)
    return types[: len(recipe["params"]) + len(recipe["steps"])]  # not the output's alias binding


def try_add_step(recipe: dict, step: dict, gen: RecipeGen | None = None) -> dict | None:
    """`recipe` with `step` appended (and the output moved to it) if that builds, else None."""
    index = len(recipe["params"]) + len(recipe["steps"])
    steps = expand_step(step, index)
    new = {**recipe, "steps": recipe["steps"] + steps, "output": index + len(steps) - 1}
    try:
        build_module(new)
    except Error:
        return None
    return new


def generate_recipe(rng: random.Random, max_steps: int = 8) -> dict:
    """A random recipe that builds: 1..max_steps steps, each kept only if the module still builds."""
    gen = RecipeGen(rng)
    recipe = {"params": _param_specs(rng), "steps": [], "output": 0}
    types = value_types(recipe)
    for _ in range(rng.randint(1, max_steps) * 2):
        if len(recipe["steps"]) >= max_steps:
            break
        types = [t for t in types if hasattr(t, "shape")]
        new = try_add_step(recipe, gen.step(recipe, value_types(recipe)))
        if new is not None:
            recipe = new
    if rng.randint(0, 3) == 0 and len(recipe["steps"]) > 1:  # sometimes return an earlier value
        recipe["output"] = rng.randrange(len(recipe["params"]), len(recipe["params"]) + len(recipe["steps"]))
    return recipe


def graph_arguments(mod: IRModule, seed: int) -> list:
    """Float inputs for `main` with every symbolic dim drawn within GRAPH_DIM_BOUNDS (from `seed`)."""
    from shapeflow.ir.arith import evaluate  # noqa: PLC0415
    from shapeflow.ir.functor import collect  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    func = mod["main"]
    dims: dict = {}
    for p in func.params:
        for v in collect(tuple(p.type.shape), Var):
            dims.setdefault(v, int(rng.integers(GRAPH_DIM_BOUNDS[0], GRAPH_DIM_BOUNDS[1] + 1)))
    args = []
    for p in func.params:
        shape = tuple(int(evaluate(d, dims)) for d in p.type.shape)
        args.append(rng.uniform(-3, 3, size=shape).astype(str(p.type.dtype)))
    return args


__all__ = [
    "GRAPH_DIM_BOUNDS",
    "RecipeGen",
    "build_module",
    "generate_recipe",
    "graph_arguments",
    "try_add_step",
    "value_types",
    "expand_step",
]
