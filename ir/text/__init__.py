"""The text format of the loop IR (docs/text-format.md): `to_text` prints, `parse` reads back.

text = to_text(mod)              # also mod.script(), func.script(), repr(node)
assert structural_equal(parse(text), mod)
"""

from shapeflow.ir.text.parser import parse
from shapeflow.ir.text.print_stmt import to_text

__all__ = ["parse", "to_text"]
