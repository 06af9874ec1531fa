"""Malformed text raises ParseError at the right 1-based line and column, and nothing else escapes the
parser, whatever the input (fuzzed by mutating printed modules)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_tir import ir_prim_funcs, prim_funcs

from shapeflow.errors import ParseError
from shapeflow.ir import IRModule
from shapeflow.ir.text import parse, to_text

GOOD = """\
@T.prim_func
def f(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
    for i in T.serial(0, n):
        B[i] = A[i] * T.float32(2.0)
"""


def with_line(body_line: str) -> str:
    return GOOD.replace("        B[i] = A[i] * T.float32(2.0)", body_line)


@pytest.mark.parametrize(
    "text, line, column, needle",
    [
        (with_line("        B[i] = A[j]"), 4, 18, "undefined name 'j'"),
        (with_line("        B[i] = T.nope(A[i])"), 4, 16, "unknown name T.nope"),
        (with_line("        B[i] = T.exp(A[i], A[i])"), 4, 16, "takes 1 positional"),
        (with_line('        B[i] = T.Cast("float33", A[i])'), 4, 16, "'float' with 33 bits"),
        (with_line("        B[i] = T.exp(i)"), 4, 16, "needs float arguments"),
        (with_line("        B[i] = A[i] +"), 4, 22, "invalid syntax"),
        (with_line("        B[i] = 1.5"), 4, 16, "float literal needs a dtype"),
        (with_line("        B[i] = A"), 4, 16, "buffer 'A' used as a value"),
        (with_line("        B[i] = T.int8(300)"), 4, 16, "does not fit"),
        (with_line("        B[i] = A[i] < A[i] < A[i]"), 4, 16, "chained"),
        (with_line("        x = 1"), 4, 9, "buffer store"),
        (with_line("        T.reads(A[i])"), 4, 9, "belongs at the top of a block"),
        (
            with_line(
                "        with T.block('b'):\n            vi = T.axis.spatial(n)\n            B[vi] = A[vi]"
            ),
            5,
            18,
            "T.axis.spatial takes (extent, value)",
        ),
        (with_line("        B[i] = A[i] @ A[i]"), 4, 16, "MatMult"),
        (GOOD.replace("T.serial(0, n)", "range(n)"), 3, 14, "a loop iterates"),
        (GOOD.replace('"float32")', '"float32", bogus=1)', 1), 2, 36, "unexpected keyword argument 'bogus'"),
        (GOOD.replace('A: T.Buffer((n,), "float32")', "A"), 2, 7, "needs an annotation"),
        ("x = 1\n", 1, 1, "expected a function decorated"),
        ("", 1, 1, "expected one"),
        (GOOD + GOOD, 6, 1, "expected one"),
        ("@I.ir_module\nclass M:\n    x = 1\n", 3, 5, "an ir_module holds"),
        ("def f(:\n", 1, 7, ""),
        ("A\0B", 1, 1, "null bytes"),
        (with_line("        B[i] = T.float32('é')"), 4, 26, "not a float"),
        (with_line("        B[i] = T.exp(é)"), 4, 22, "undefined name 'é'"),
    ],
)
def test_errors_have_positions(text, line, column, needle):
    with pytest.raises(ParseError) as info:
        parse(text, source="case.sf")
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert needle in str(err)
    assert str(err).startswith(f"case.sf:{line}:{column}: ")


def test_deep_nesting_is_a_parse_error_not_a_crash():
    deep = "(" * 1000 + "1" + ")" * 1000
    with pytest.raises(ParseError):
        parse(with_line(f"        B[i] = {deep}"))
    long_chain = " + ".join(["A[i]"] * 30000)
    try:
        parse(with_line(f"        B[i] = {long_chain}"))
    except ParseError:
        pass


def test_non_text_input():
    with pytest.raises(ParseError):
        parse(b"\xff\xfe")
    with pytest.raises(ParseError):
        parse(42)


def _mutate(text: str, data) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.integers(0, 3))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        if kind == 0 and chars:
            del chars[pos]
        elif kind == 1:
            chars.insert(
                pos, data.draw(st.sampled_from(list("()[]:,.=+-*/%<>\"' \n0123456789abinTxn_\t\0é")))
            )
        elif kind == 2 and chars:
            chars[pos] = data.draw(st.characters())
        else:  # swap a token-sized chunk elsewhere
            end = min(len(chars), pos + data.draw(st.integers(1, 12)))
            chunk = chars[pos:end]
            del chars[pos:end]
            chars[data.draw(st.integers(0, len(chars))) : 0] = chunk
    return "".join(chars)


@settings(deadline=None, max_examples=150, suppress_health_check=list(HealthCheck))
@given(st.one_of(prim_funcs(max_stmts=2), ir_prim_funcs(max_depth=2)), st.data())
def test_fuzzed_text_parses_or_raises_parse_error(func, data):
    text = to_text(IRModule({"f": func}) if data.draw(st.booleans()) else func)
    mutated = _mutate(text, data)
    try:
        result = parse(mutated)
    except ParseError as err:
        assert err.line is None or err.line >= 1
        return
    # Whatever parsed must print and parse back to itself.
    again = parse(to_text(result))
    assert to_text(again) == to_text(result)
