"""The text format (docs/text-format.md): `to_text` prints, `parse` reads back. One module text holds both
levels: loop-level `@T.prim_func` functions and graph-level `@R.function` functions (whose printer and
parser, `graph_print` and `graph_parse`, are loaded on first use).

text = to_text(mod)              # also mod.script(), func.script(), repr(node)
assert structural_equal(parse(text), mod)
"""

from shapeflow.ir.text.parser import parse
from shapeflow.ir.text.print_stmt import to_text

__all__ = ["parse", "to_text"]
