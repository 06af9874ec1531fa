"""The table of VM step builders, keyed by opcode, and the operand checks they share.

A builder `fn(vm, func, *operands) -> step` validates its operands once (registers and heap slots in range,
shape expressions well formed) and returns the closure `step(R, H)` the VM runs. Builders register with
`@builds("opcode")`; machine.py (data movement, allocation, calls, control flow) and check_steps.py
(boundary and shape checks) hold them.
"""

from __future__ import annotations

from collections.abc import Callable

from shapeflow.errors import Error
from shapeflow.runtime.vm import shape_code as SC
from shapeflow.runtime.vm.program import VMFunction

Step = Callable[[list, list], "int | None"]

STEP_BUILDERS: dict[str, Callable] = {}


def builds(opcode: str):
    def register(fn):
        STEP_BUILDERS[opcode] = fn
        return fn

    return register


def build_step(vm, func: VMFunction, instr: list) -> Step:
    try:
        return STEP_BUILDERS[instr[0]](vm, func, *instr[1:])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise Error(f"VM function '{func.name}': malformed instruction {instr!r}: {exc}") from None


def reg_index(func: VMFunction, r) -> int:
    if type(r) is not int or not 0 <= r < func.num_regs:
        raise Error(f"VM function '{func.name}': register {r!r} out of range")
    return r


def slot_index(func: VMFunction, s) -> int:
    if type(s) is not int or not 0 <= s < len(func.heap):
        raise Error(f"VM function '{func.name}': heap slot {s!r} out of range")
    return s


def heap_codes(func: VMFunction, codes) -> list:
    for c in codes:
        SC.render(c)  # validates
        if SC.max_slot(c) >= len(func.heap):
            raise Error(f"VM function '{func.name}': shape expression {c!r} reads past the heap")
    return list(codes)


def expected_text(code, value, names) -> str:
    text = SC.describe(code, names)
    return text if code[0] in ("c", "h") else f"{text} = {value}"
