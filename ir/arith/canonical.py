"""Canonical linear form of integer expressions: sum of coefficient * monomial, plus a constant.

A monomial is a product of atoms (anything that is not +, -, * or a constant: Vars, floordivs, mins, ...).
Atoms are identified by a structural key in which Vars are compared by identity; sorting by that key (a Var
sorts by its name first, then by identity) gives the order in which a sum is turned back into nodes, so equal
expressions come out as structurally equal nodes. Coefficients are kept modulo 2**bits of the dtype, which is
exact for wrapping + - * (integers mod 2**bits form a ring).
"""

from __future__ import annotations

from collections.abc import Callable

from shapeflow.ir.arith.evaluate import wrap
from shapeflow.ir.dtype import DataType
from shapeflow.ir.expr import Add, BinaryOp, CmpOp, IntImm, Mul, PrimExpr, Sub, Var
from shapeflow.ir.node import Node, fields_of

Key = tuple
Monomial = tuple  # sorted tuple of atom keys; () is the constant monomial (kept apart as `const`)

# Distributing a product of two sums is only worth it while the result stays small.
MAX_PRODUCT_TERMS = 16


class Sum:
    """An immutable-by-convention canonical sum. `terms` maps monomials to nonzero wrapped coefficients."""

    __slots__ = ("terms", "const", "dtype")

    def __init__(self, terms: dict[Monomial, int], const: int, dtype: DataType):
        self.terms = terms
        self.const = const
        self.dtype = dtype

    @staticmethod
    def constant(value: int, dtype: DataType) -> Sum:
        return Sum({}, wrap(value, dtype), dtype)

    def is_const(self) -> bool:
        return not self.terms

    def add(self, other: Sum, scale: int = 1) -> Sum:
        """self + scale * other."""
        dtype = self.dtype
        terms = dict(self.terms)
        for mono, coeff in other.terms.items():
            c = wrap(terms.get(mono, 0) + scale * coeff, dtype)
            if c:
                terms[mono] = c
            else:
                terms.pop(mono, None)
        return Sum(terms, wrap(self.const + scale * other.const, dtype), dtype)

    def scale(self, k: int) -> Sum:
        dtype = self.dtype
        if wrap(k, dtype) == 0:
            return Sum({}, 0, dtype)
        terms = {}
        for mono, coeff in self.terms.items():
            c = wrap(coeff * k, dtype)
            if c:
                terms[mono] = c
        return Sum(terms, wrap(self.const * k, dtype), dtype)

    def mul(self, other: Sum) -> Sum | None:
        """The distributed product, or None when it would have too many terms."""
        if other.is_const():
            return self.scale(other.const)
        if self.is_const():
            return other.scale(self.const)
        if (len(self.terms) + 1) * (len(other.terms) + 1) > MAX_PRODUCT_TERMS:
            return None
        dtype = self.dtype
        left = list(self.terms.items()) + ([((), self.const)] if self.const else [])
        right = list(other.terms.items()) + ([((), other.const)] if other.const else [])
        terms: dict[Monomial, int] = {}
        const = 0
        for m1, c1 in left:
            for m2, c2 in right:
                mono = tuple(sorted(m1 + m2)) if m1 and m2 else (m1 or m2)
                if mono:
                    terms[mono] = terms.get(mono, 0) + c1 * c2
                else:
                    const += c1 * c2
        terms = {m: wrap(c, dtype) for m, c in terms.items() if wrap(c, dtype)}
        return Sum(terms, wrap(const, dtype), dtype)


def is_index_dtype(dtype: DataType) -> bool:
    """Scalar integers: the dtypes the canonical form handles."""
    return dtype.is_integer and dtype.lanes == 1


class Canonicalizer:
    """Keys, parsing to Sum and building back. Caches are keyed by id and keep their nodes alive."""

    def __init__(self) -> None:
        self._keys: dict[int, tuple[Node, Key]] = {}
        self.atoms: dict[Key, PrimExpr] = {}
        self._sums: dict[int, tuple[PrimExpr, Sum]] = {}

    def clear_if_large(self, limit: int = 200_000) -> None:
        if len(self._keys) > limit or len(self._sums) > limit:
            self._keys.clear()
            self._sums.clear()
            self.atoms.clear()

    # -- structural keys -----------------------------------------------------------------------
    def key(self, obj) -> Key:
        if isinstance(obj, Node):
            found = self._keys.get(id(obj))
            if found is not None:
                return found[1]
            cls = type(obj)
            if cls is Var:
                k = (0, obj.name, obj.dtype._str, id(obj))
            elif cls is IntImm:
                k = (1, "IntImm", obj.dtype._str, obj.value)
            elif isinstance(obj, (BinaryOp, CmpOp)):
                k = (1, cls.__name__, self.key(obj.a), self.key(obj.b), obj.dtype._str)
            elif isinstance(obj, PrimExpr) or cls.__name__ != "Buffer":
                k = (1, cls.__name__, *(self.key(getattr(obj, f)) for f in fields_of(cls)))
            else:  # buffers are named objects, compared by identity like Vars
                k = (0, getattr(obj, "name", ""), "buffer", id(obj))
            self._keys[id(obj)] = (obj, k)
            return k
        if isinstance(obj, DataType):
            return (3, "DataType", obj._str)
        if isinstance(obj, (tuple, list)):
            return (2, "seq", *(self.key(x) for x in obj))
        return (3, type(obj).__name__, repr(obj))

    def same(self, a: PrimExpr, b: PrimExpr) -> bool:
        """Structurally the same expression with the very same variables."""
        if a is b:
            return True
        cls = type(a)
        if cls is not type(b) or a.dtype is not b.dtype:
            return False
        if cls is IntImm:
            return a.value == b.value
        if cls is Var:
            return False
        if isinstance(a, (BinaryOp, CmpOp)):
            return self.same(a.a, b.a) and self.same(a.b, b.b)
        return self.key(a) == self.key(b)

    # -- parse -----------------------------------------------------------------------------------
    def to_sum(self, expr: PrimExpr) -> Sum:
        found = self._sums.get(id(expr))
        if found is not None:
            return found[1]
        cls = type(expr)
        dtype = expr.dtype
        if cls is IntImm:
            out = Sum.constant(expr.value, dtype)
        elif cls is Add:
            out = self.to_sum(expr.a).add(self.to_sum(expr.b))
        elif cls is Sub:
            out = self.to_sum(expr.a).add(self.to_sum(expr.b), -1)
        elif cls is Mul:
            out = self.to_sum(expr.a).mul(self.to_sum(expr.b))
            if out is None:
                out = self._atom_sum(expr)
        else:
            out = self._atom_sum(expr)
        self._sums[id(expr)] = (expr, out)
        return out

    def _atom_sum(self, expr: PrimExpr) -> Sum:
        k = self.key(expr)
        self.atoms.setdefault(k, expr)
        return Sum({(k,): 1}, 0, expr.dtype)

    # -- build -----------------------------------------------------------------------------------
    def monomial_node(self, mono: Monomial) -> PrimExpr:
        out = self.atoms[mono[0]]
        for k in mono[1:]:
            out = Mul(out, self.atoms[k])
        return out

    def from_sum(self, s: Sum, mark: Callable[[PrimExpr], None] | None = None) -> PrimExpr:
        """Nodes for `s`: positive terms first, then negative ones, each group in key order, constant last.

        `mark` is called on every node built, so the caller can record them as already simplified.
        """
        dtype = s.dtype
        signed_min = -(1 << (dtype.bits - 1))

        def made(node: PrimExpr) -> PrimExpr:
            if mark is not None:
                mark(node)
            return node

        def imm(v: int) -> PrimExpr:
            return IntImm(dtype, wrap(v, dtype))

        items = sorted(s.terms.items(), key=lambda kv: kv[0])
        pos = [(m, c) for m, c in items if c > 0]
        neg = [(m, c) for m, c in items if c < 0]
        out: PrimExpr | None = None
        const_first = not pos and neg and 0 < s.const
        if const_first:  # 3 - x rather than x * -1 + 3
            out = imm(s.const)
        for mono, c in pos:
            term = self.monomial_node(mono)
            if c != 1:
                term = made(Mul(term, imm(c)))
            out = term if out is None else made(Add(out, term))
        for mono, c in neg:
            term = self.monomial_node(mono)
            if out is None:
                out = made(Mul(term, imm(c)))
            elif c == signed_min:
                out = made(Add(out, made(Mul(term, imm(c)))))
            else:
                out = made(Sub(out, term if c == -1 else made(Mul(term, imm(-c)))))
        if out is None:
            return imm(s.const)
        if const_first:
            return out
        if s.const > 0 or s.const == signed_min:
            out = made(Add(out, imm(s.const)))
        elif s.const < 0:
            out = made(Sub(out, imm(-s.const)))
        return out
