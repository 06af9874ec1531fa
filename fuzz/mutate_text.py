"""Text-level mutation of a test's printed program: the parser and the verifier are part of the compiler
users meet first, and a well-formed-only fuzzer never runs their error paths.

A text mutant usually fails to parse or to verify: the oracles then count the test invalid (not a bug)
unless the parser or verifier raised something other than a shapeflow error (ParseError, VerifyError,
...), which is the bug this mutation is after. Mutations are small, like a user's typo: a line deleted,
duplicated or swapped with its neighbour, a number or dtype or name replaced, a bracket or colon dropped
or added, an indentation changed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_DTYPE = re.compile(r'"(float16|float32|float64|int8|int16|int32|int64|uint8|uint32|bool)"')
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "uint32", "bool", "bfloat16"]
_NUMBERS = ["0", "-1", "1", "2", "7", "4096", "9223372036854775807", "-9223372036854775808", "0.5", "1e30"]
_PUNCT = ["(", ")", ":", ",", "[", "]", "=", " ", "."]

TEXT_MUTATORS: dict[str, Callable[[list[str], random.Random], list[str] | None]] = {}


def text_mutator(fn):
    TEXT_MUTATORS[fn.__name__] = fn
    return fn


def _body_lines(lines: list[str]) -> list[int]:
    """Lines after the header comment and decorator (mutating those only tests the version check)."""
    return [k for k, line in enumerate(lines) if k > 1 and line.strip()]


@text_mutator
def delete_line(lines, rng):
    body = _body_lines(lines)
    if not body:
        return None
    k = rng.choice(body)
    return lines[:k] + lines[k + 1 :]


@text_mutator
def duplicate_line(lines, rng):
    body = _body_lines(lines)
    if not body:
        return None
    k = rng.choice(body)
    return lines[: k + 1] + [lines[k]] + lines[k + 1 :]


@text_mutator
def swap_lines(lines, rng):
    body = _body_lines(lines)
    if len(body) < 2:
        return None
    k = rng.choice(body[:-1])
    out = list(lines)
    out[k], out[k + 1] = out[k + 1], out[k]
    return out


def _replace_match(lines, rng, pattern: re.Pattern, choices: Callable[[str], str]) -> list[str] | None:
    spots = [(k, m) for k in _body_lines(lines) for m in pattern.finditer(lines[k])]
    if not spots:
        return None
    k, m = rng.choice(spots)
    out = list(lines)
    out[k] = lines[k][: m.start()] + choices(m.group(0)) + lines[k][m.end() :]
    return out


@text_mutator
def replace_number(lines, rng):
    return _replace_match(lines, rng, _NUMBER, lambda old: rng.choice(_NUMBERS))


@text_mutator
def replace_dtype(lines, rng):
    return _replace_match(lines, rng, _DTYPE, lambda old: f'"{rng.choice(_DTYPES)}"')


@text_mutator
def replace_name(lines, rng):
    names = sorted({m.group(0) for k in _body_lines(lines) for m in _NAME.finditer(lines[k])})
    if not names:
        return None
    return _replace_match(lines, rng, _NAME, lambda old: rng.choice(names))


@text_mutator
def edit_punctuation(lines, rng):
    body = _body_lines(lines)
    if not body:
        return None
    k = rng.choice(body)
    line = lines[k]
    pos = rng.randrange(len(line) + 1)
    if rng.randint(0, 1) and line:
        pos = min(pos, len(line) - 1)
        new = line[:pos] + line[pos + 1 :]  # drop a character
    else:
        new = line[:pos] + rng.choice(_PUNCT) + line[pos:]
    return lines[:k] + [new] + lines[k + 1 :]


@text_mutator
def reindent(lines, rng):
    body = _body_lines(lines)
    if not body:
        return None
    k = rng.choice(body)
    stripped = lines[k].lstrip(" ")
    depth = (len(lines[k]) - len(stripped)) // 4
    new_depth = max(0, depth + rng.choice([-1, 1]))
    return lines[:k] + ["    " * new_depth + stripped] + lines[k + 1 :]


def mutate_text(text: str, rng: random.Random) -> tuple[str, str] | None:
    """(mutated text, mutator name), or None when no mutator applied in a few draws."""
    lines = text.split("\n")
    names = sorted(TEXT_MUTATORS)
    for _ in range(4):
        name = rng.choice(names)
        out = TEXT_MUTATORS[name](lines, rng)
        if out is not None:
            return "\n".join(out), name
    return None


__all__ = ["TEXT_MUTATORS", "text_mutator", "mutate_text"]
