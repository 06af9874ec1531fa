"""Times printing and parsing of a loop-IR module with 10,000 statements and prints JSON.

The module is what a large generated kernel looks like: a few loop nests over symbolic shapes, each with
many stores whose indices carry index arithmetic (`B[i, (j + 3) % m] = A[i, (j + 3) % m] * c + C[...]`).
A heavy variant with twice the syntax per store is timed too and reported beside it. Best of several
runs, so one slow run (another process on the machine) does not decide the number. The parser's target is 2 s.
"""

from __future__ import annotations

import json
import time

from shapeflow.ir import IRModule, Var, structural_equal
from shapeflow.ir import expr as E
from shapeflow.ir.dtype import DataType
from shapeflow.ir.text import parse, to_text
from shapeflow.ir.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer, seq

INT64 = DataType("int64")
F32 = DataType("float32")


def build_module(statements: int = 10_000, nests: int = 4, heavy: bool = False) -> IRModule:
    """`statements` stores in `nests` loop nests. Typical stores index with `(j + c) % m`; heavy ones
    (twice the syntax per store) with `(i * a + b) % n, (j + c - i // 3) % m` and an `exp` call."""
    n, m = Var("n"), Var("m")
    A = decl_buffer((n, m), "float32", "A")
    B = decl_buffer((n, m), "float32", "B")
    C = decl_buffer((m,), "float32", "C")
    loops = []
    per_nest = statements // nests
    for k in range(nests):
        i, j = Var("i"), Var("j")
        body = []
        for s in range(per_nest):
            col = E.FloorMod(E.Add(j, E.IntImm(INT64, s % 16)), m)
            if heavy:
                row = E.FloorMod(E.Add(E.Mul(i, E.IntImm(INT64, s % 7 + 1)), E.IntImm(INT64, s)), n)
                col = E.FloorMod(
                    E.Sub(E.Add(j, E.IntImm(INT64, s % 5)), E.FloorDiv(i, E.IntImm(INT64, 3))), m
                )
                extra = E.Call(F32, "exp", (E.BufferLoad(C, (col,)),))
            else:
                row, extra = i, E.BufferLoad(C, (col,))
            value = E.Add(E.Mul(E.BufferLoad(A, (row, col)), E.FloatImm(F32, 0.5 + s)), extra)
            body.append(BufferStore(B, value, (row, col)))
        inner = For(j, 0, m, ForKind.SERIAL if k % 2 else ForKind.PARALLEL, seq(*body))
        loops.append(For(i, 0, n, ForKind.SERIAL, inner))
    func = PrimFunc((A, B, C), seq(*loops), {"global_symbol": "big"})
    return IRModule({"big": func})


def measure(mod: IRModule, runs: int = 3) -> tuple[float, float, int]:
    print_s, text = best_of(lambda: to_text(mod), runs)
    parse_s, parsed = best_of(lambda: parse(text), runs)
    assert structural_equal(parsed, mod), "the parsed module differs from the printed one"
    return print_s, parse_s, len(text)


def best_of(fn, runs: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    statements = 10_000
    print_s, parse_s, size = measure(build_module(statements))
    heavy_print_s, heavy_parse_s, heavy_size = measure(build_module(statements, heavy=True))
    result = {
        "statements": statements,
        "text_bytes": size,
        "parse_s": round(parse_s, 4),
        "print_s": round(print_s, 4),
        "target_parse_s": 2.0,
        "parse_within_target": parse_s < 2.0,
        # The same count of stores with twice the syntax each, for scale.
        "heavy_text_bytes": heavy_size,
        "heavy_parse_s": round(heavy_parse_s, 4),
        "heavy_print_s": round(heavy_print_s, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
