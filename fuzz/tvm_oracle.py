"""The differential oracle against apache-tvm (the optional `tvm` extra): a second, independent compiler.

A test's original PrimFunc is translated to TVMScript (tvm_translate.py), built with
`tvm.compile(mod, target="llvm")` and run on the very arrays our reference interpreter ran on. Verdicts:

- "agree": TVM computed what our interpreter computed;
- "not-translatable": the function uses a construct outside the translated subset (not run);
- "refused": TVM did not parse or build it (its limits: counted, never called a bug);
- "filtered": the results differ, but the program has behaviour LLVM leaves undefined and our reference
  defines (a signed integer overflow seen while interpreting, an unsigned 32/64-bit add, sub or mul that
  wraps, a float-to-int cast, `x - x` of a non-finite float or a comparison with NaN, which TVM's
  simplifier rewrites assuming finite ordered floats): not a bug of anyone;
- "internal-error": TVM's own internal check failed while building a program it parsed (a TVM bug
  candidate once our compiler is confirmed to build and run the program right);
- "mismatch": the results differ on a defined program. The caller then asks our own compiled kernel:
  if it agrees with the interpreter, TVM is the odd one out and the finding is a TVM bug candidate.

`render_tvm_repro` writes the standalone reproducer of such a finding: TVMScript text, the exact input
bytes and the expected outputs, with only tvm and numpy imported.
"""

from __future__ import annotations

import base64
import contextlib
import sys
from dataclasses import dataclass

import numpy as np

from shapeflow.fuzz.tvm_translate import NotTranslatable, to_tvmscript
from shapeflow.ir import expr as E
from shapeflow.ir.functor import collect
from shapeflow.ir.tir.function import PrimFunc


@dataclass
class TvmVerdict:
    status: str  # agree | not-translatable | refused | filtered | mismatch
    message: str = ""
    script: str = ""


def tvm_available() -> bool:
    """Whether apache-tvm imports here (the oracle is skipped, never failed, without it)."""
    try:
        import tvm  # noqa: F401, PLC0415
    except Exception:
        return False
    return True


def tvm_version() -> str:
    try:
        import tvm  # noqa: PLC0415

        return str(tvm.__version__)
    except Exception:
        return ""


def parse_tvm(script: str):
    import tvm  # noqa: PLC0415
    from tvm.script import tirx  # noqa: F401, PLC0415

    return tvm.script.from_source(script, check_well_formed=False)


def compile_tvm(func):
    import tvm  # noqa: PLC0415

    return tvm.compile(tvm.IRModule({"main": func}), target="llvm")["main"]


def build_tvm(script: str):
    """Parse and build TVMScript text; returns the compiled module's `main`."""
    return compile_tvm(parse_tvm(script))


def run_tvm(main, args: list) -> list:
    """Call a built TVM function on copies of `args`; returns them as numpy arrays (ints stay ints)."""
    import tvm  # noqa: PLC0415

    tensors = [tvm.runtime.tensor(np.array(a, copy=True)) if isinstance(a, np.ndarray) else a for a in args]
    main(*tensors)
    return [t.numpy() if isinstance(a, np.ndarray) else t for a, t in zip(args, tensors)]


@contextlib.contextmanager
def watch_signed_overflow():
    """Within the block, the reference interpreter records (in the yielded list) every integer result of
    an arithmetic operation that had to wrap where TVM declares it cannot: signed results (LLVM's nsw, and
    TVM's simplifier) and 32/64-bit unsigned ones (TVM's LLVM code generator emits add/sub/mul nuw for
    unsigned types of 32 bits and more, so `0u - x` is poison there and LLVM folds it to 0). Our reference
    defines all of them (two's complement wrap). INT_MIN / -1 is caught too: its exact value wraps."""
    from shapeflow.ir.tir import interpreter_values as IV  # noqa: PLC0415

    seen: list[str] = []
    original = IV.int_wrapper

    def watching(dtype):
        wrap = original(dtype)
        caller = sys._getframe(1).f_code.co_name
        if (dtype.is_uint and dtype.bits < 32) or dtype.is_bool or caller != "binary_fn":
            return wrap

        def checked(v):
            out = wrap(v)
            if out != v and len(seen) < 8:
                seen.append(f"{dtype} overflow: {v}")
            return out

        return checked

    IV.int_wrapper = watching
    try:
        yield seen
    finally:
        IV.int_wrapper = original


def _var_ids(e, deps: dict) -> set:
    out: set = set()
    for v in collect(e, E.Var):
        out |= deps.get(id(v), {id(v)})
    return out


def order_dependent(func: PrimFunc) -> str:
    """Why the result of `func` may depend on the order in which a parallel or vectorized loop runs its
    iterations ('' when it cannot): a store in such a loop at a point that does not vary with the loop
    variable, or a load of a stored buffer at another point. Our reference runs such loops serially, TVM
    runs vector lanes in lockstep: both are right, the program is racy (mutations make such programs)."""
    from shapeflow.ir.structural import structural_equal  # noqa: PLC0415
    from shapeflow.ir.tir import stmt as S  # noqa: PLC0415

    found: list[str] = []

    def visit(node, deps: dict, racy: list) -> None:
        if isinstance(node, S.BlockRealize):
            deps = dict(deps)
            for iv, value in zip(node.block.iter_vars, node.iter_values):
                deps[id(iv.var)] = _var_ids(value, deps)
        if isinstance(node, S.For) and node.kind in (S.ForKind.PARALLEL, S.ForKind.VECTORIZED):
            racy = [*racy, node]
            stores = collect(node.body, S.BufferStore)
            loads = collect(node.body, E.BufferLoad)
            for st in stores:
                if id(node.loop_var) not in _var_ids(tuple(st.indices), _deps_below(node.body, deps)):
                    found.append(f"{st.buffer.name} stored at a point fixed across a {node.kind.value} loop")
                for ld in loads:
                    if ld.buffer is st.buffer and not structural_equal(tuple(ld.indices), tuple(st.indices)):
                        found.append(f"{st.buffer.name} read at another point in a {node.kind.value} loop")
        for child in _children(node):
            visit(child, deps, racy)

    visit(func.body, {}, [])
    return found[0] if found else ""


def _deps_below(node, deps: dict) -> dict:
    """`deps` plus the bindings of every block below `node` (block iter var -> loop vars it reads)."""
    from shapeflow.ir.tir import stmt as S  # noqa: PLC0415

    out = dict(deps)
    for realize in reversed(collect(node, S.BlockRealize)):  # post-order: outer blocks last, so reverse
        for iv, value in zip(realize.block.iter_vars, realize.iter_values):
            out[id(iv.var)] = _var_ids(value, out)
    return out


def _children(node) -> list:
    from shapeflow.ir.tir import stmt as S  # noqa: PLC0415

    out = []
    for name in ("body", "then_case", "else_case", "init", "block"):
        child = getattr(node, name, None)
        if isinstance(child, S.Stmt):
            out.append(child)
    if isinstance(node, S.SeqStmt):
        out.extend(node.seq)
    return out


def undefined_in_llvm(func: PrimFunc, args: list) -> str:
    """Why `func` on `args` has behaviour LLVM leaves undefined or that depends on loop order ('' when
    none is seen)."""
    racy = order_dependent(func)
    if racy:
        return racy
    for c in collect(func.body, E.Cast):
        if c.value.dtype.is_float and c.dtype.is_integer:
            return "float-to-int cast (undefined when out of range)"
    with watch_signed_overflow() as seen, watch_nonfinite_cancellation() as cancelled:
        try:
            interpret_uncached(func, args)
        except Exception:
            return "the reference run failed while watching overflow"
    return (seen + cancelled)[0] if seen or cancelled else ""


@contextlib.contextmanager
def watch_nonfinite_cancellation():
    """Within the block, the reference interpreter records (in the yielded list) every float `x - x` it
    evaluates on one non-finite value (both operands the same inf, or both NaN) and every float comparison
    with a NaN operand. TVM's simplifier assumes finite, ordered floats by design: it folds `x - x` to 0 and
    `x == x` to true (apache/tvm PRs 11373 and 17158) and rewrites `!(x <= y)` as `y < x`, so a difference
    there is not a bug of anyone."""
    from shapeflow.ir.tir import interpreter_values as IV  # noqa: PLC0415

    seen: list[str] = []
    watched = [(IV._FLOAT_OPS, "Sub", _same_nonfinite, "x - x of a non-finite float (TVM folds it to 0)")]
    why = "float comparison with a NaN operand (TVM's simplifier assumes ordered floats)"
    watched += [(IV.CMP_OPS, name, _any_nan, why) for name in ("EQ", "NE", "LT", "LE", "GT", "GE")]
    originals = [table[name] for table, name, _, _ in watched]

    def watching(fn, test, message):
        def checked(a, b):
            if len(seen) < 8 and test(a, b):
                seen.append(message)
            return fn(a, b)

        return checked

    for (table, name, test, message), fn in zip(watched, originals):
        table[name] = watching(fn, test, message)
    try:
        yield seen
    finally:
        for (table, name, _, _), fn in zip(watched, originals):
            table[name] = fn


def _floats(a, b):
    x, y = np.asarray(a), np.asarray(b)
    return (x, y) if x.dtype.kind == "f" and y.dtype.kind == "f" else (None, None)


def _same_nonfinite(a, b) -> bool:
    x, y = _floats(a, b)
    if x is None:
        return False
    with np.errstate(invalid="ignore"):
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        return bool(np.any(same & ~np.isfinite(x)))


def _any_nan(a, b) -> bool:
    x, y = _floats(a, b)
    return x is not None and bool(np.any(np.isnan(x)) or np.any(np.isnan(y)))


def interpret_uncached(func: PrimFunc, args: list) -> list:
    """Run the reference interpreter on copies of `args`, building fresh closures (the interpreter's cache
    holds closures built before `watch_signed_overflow` was in force)."""
    from shapeflow.fuzz.inputs import copy_arguments  # noqa: PLC0415
    from shapeflow.ir.tir.interpreter import CompiledFunction  # noqa: PLC0415

    out = copy_arguments(args)
    CompiledFunction(func)(*out)
    return out


def compare_tvm(expected: list, actual: list) -> str:
    from shapeflow.fuzz.oracles import compare_arrays  # noqa: PLC0415

    # Looser than our own oracle: TVM lowers some intrinsics (tanh, erf, sigmoid) with its own formulas.
    return compare_arrays(expected, actual, rtol=1e-3, rtol_half=2e-2)


def check_tvm(func: PrimFunc, args: list, expected: list) -> TvmVerdict:
    """Translate, build with TVM, run on `args` and compare with the reference results `expected`."""
    try:
        script = to_tvmscript(func)
    except NotTranslatable as exc:
        return TvmVerdict("not-translatable", str(exc))
    try:
        parsed = parse_tvm(script)
    except Exception as exc:  # the parser (and its constant folding) refused the text: not judged
        last = (str(exc).strip().splitlines() or [""])[-1][:300]
        return TvmVerdict("refused", f"parse: {type(exc).__name__}: {last}", script)
    try:
        main = compile_tvm(parsed)
    except Exception as exc:
        last = (str(exc).strip().splitlines() or [""])[-1][:300]
        # An internal check of TVM failing on a program it parsed is its bug (the caller confirms that
        # shapeflow compiles the same program right); anything else is counted as a refusal.
        status = "internal-error" if type(exc).__name__ == "InternalError" else "refused"
        return TvmVerdict(status, f"{type(exc).__name__}: {last}", script)
    try:
        actual = run_tvm(main, args)
    except Exception as exc:
        return TvmVerdict("refused", f"run: {type(exc).__name__}: {str(exc)[:300]}", script)
    diff = compare_tvm(expected, actual)
    if not diff:
        return TvmVerdict("agree", "", script)
    why = undefined_in_llvm(func, args)
    if why:
        return TvmVerdict("filtered", f"{diff} ({why})", script)
    return TvmVerdict("mismatch", diff, script)


def _encode(a) -> str:
    if not isinstance(a, np.ndarray):
        return repr(a)
    data = base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
    return f'_arr("{data}", "{a.dtype.str}", {tuple(a.shape)!r})'


TVM_REPRO_TEMPLATE = '''"""Reproducer of an apache-tvm {version} bug candidate found by the shapeflow fuzzer:
{kind}.

{message}

The expected values come from shapeflow's reference interpreter, and shapeflow's own compiled kernel
computes them too. Needs only tvm and numpy.
Run: python repro.py   (exit status 1 while TVM computes other values, 0 once it agrees)
"""

import base64
import sys

import numpy as np
import tvm
from tvm.script import tirx as T  # noqa: F401

SCRIPT = {script!r}


def _arr(data, dtype, shape):
    return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()


ARGS = [{args}]
EXPECTED = [{expected}]

if __name__ == "__main__":
    print("tvm", tvm.__version__)
    func = tvm.script.from_source(SCRIPT, check_well_formed=False)
    try:
        main = tvm.compile(tvm.IRModule({{"main": func}}), target="llvm")["main"]
    except Exception as exc:
        print(f"tvm.compile failed on a valid program: {{type(exc).__name__}}: {{exc}}")
        sys.exit(1)
    tensors = [tvm.runtime.tensor(a) if isinstance(a, np.ndarray) else a for a in ARGS]
    main(*tensors)
    bad = False
    for k, (t, e) in enumerate(zip(tensors, EXPECTED)):
        if not isinstance(e, np.ndarray):
            continue
        got = t.numpy()
        if e.dtype.kind == "f":
            g64, e64 = got.astype(np.float64), e.astype(np.float64)
            same = np.isclose(g64, e64, rtol=1e-3, atol=1e-3, equal_nan=True)
        else:
            same = got == e
        if not np.all(same):
            where = tuple(int(x) for x in np.argwhere(~same)[0])
            print(f"argument {{k}} differs at {{where}}: tvm {{got[where]!r}}, expected {{e[where]!r}}")
            bad = True
    sys.exit(1 if bad else 0)
'''


def render_tvm_repro(
    script: str, args: list, expected: list, message: str, kind: str = "wrong result"
) -> str:
    return TVM_REPRO_TEMPLATE.format(
        kind=kind,
        version=tvm_version(),
        message=message.replace('"""', "'''")[:500],
        script=script,
        args=", ".join(_encode(a) for a in args),
        expected=", ".join(_encode(a) for a in expected),
    )


__all__ = [
    "TvmVerdict",
    "tvm_available",
    "tvm_version",
    "build_tvm",
    "run_tvm",
    "check_tvm",
    "watch_signed_overflow",
    "watch_nonfinite_cancellation",
    "interpret_uncached",
    "undefined_in_llvm",
    "render_tvm_repro",
]
