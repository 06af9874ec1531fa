"""The VM program: functions of instructions over registers and a shape heap, as plain JSON-able data.

A program is what the VM codegen produces and what an artifact stores (as JSON; never pickle). Each
instruction is a list `[opcode, operands...]`; operands are ints (registers, heap slots, table indices),
strings (names, dtypes), shape expressions (shapeflow.runtime.vm.shape_code) and lists of those.

| opcode | operands | meaning |
|---|---|---|
| check_tensor | reg, where, dtype, ndim, dims | dtype, rank; dims [d, "store", slot] or [d, "assert", code] |
| assert_dim | reg, where, d, code | dim d of R[reg] equals code (deferred until its Vars are bound) |
| check_shape | reg, where, ndim, dims | the same for a shape value (tuple of ints) |
| check_prim | reg, where, dtype, mode, arg | a scalar; mode "store" (slot), "assert" (code) or "any" |
| check_bounds | bounds | each [slot, name, lo, hi]: lo <= H[slot] <= hi (declared var_bounds) |
| assert_bcast | where, d, code, out_code | numpy broadcasting: the dim equals 1 or the output dim |
| assert_eq | where, code, other code, what | two shape values are equal (e.g. a reshape's element counts) |
| assert_le | where, code, other code, what | a shape value is at most another (e.g. a slice's last index) |
| alloc_tensor | dst, shape codes, dtype | a new C-contiguous tensor |
| alloc_storage | dst, size code | raw bytes for views (memory planning), reused across calls |
| release_storage | reg | give a storage back for the next call's alloc_storage (no later use) |
| alloc_view | dst, storage, offset code, shape codes, dtype | a tensor inside a storage, at a byte offset |
| call_tir | kernel, arg regs, scalar codes, symbolic codes, checked | a kernel (inputs, then outputs) |
| call_lib | name, input regs, output regs, scalar codes | a registered library function (DPS) |
| call_gemm | kind, a, b (reg or ["const", i]), c, fallback | hierarchy GEMM (runtime/vm/gemm_steps.py) |
| call | dst, function, arg regs | another VM function |
| const | dst, index | a constant tensor |
| literal | dst, value | a Python scalar (float, bool) |
| prim | dst, code | an int computed from the heap |
| shape | dst, codes | a shape value |
| tuple | dst, regs | a tuple |
| get_item | dst, src, index | a field of a tuple |
| move | dst, src | copy a register |
| free | reg | drop a register's reference (after its last use) |
| if | reg, else_pc | fall through when R[reg] is true, else jump |
| goto | pc | jump |
| ret | reg | return R[reg] |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shapeflow.errors import Error

FORMAT_VERSION = 1

# opcode -> number of operands (checked when a program is loaded)
ARITY: dict[str, int] = {
    "check_tensor": 5,
    "assert_dim": 4,
    "check_shape": 4,
    "check_prim": 5,
    "check_bounds": 1,
    "assert_bcast": 4,
    "assert_eq": 4,
    "assert_le": 4,
    "alloc_tensor": 3,
    "alloc_storage": 2,
    "release_storage": 1,
    "alloc_view": 5,
    "call_tir": 5,
    "call_lib": 4,
    "call_gemm": 5,
    "call": 3,
    "const": 2,
    "literal": 2,
    "prim": 2,
    "shape": 2,
    "tuple": 2,
    "get_item": 3,
    "move": 2,
    "free": 1,
    "if": 2,
    "goto": 1,
    "ret": 1,
}


@dataclass
class VMFunction:
    """One function: `params` (names, in registers 0..k-1), `num_regs`, the heap's Var names, the code."""

    name: str
    params: list[str]
    num_regs: int
    heap: list[str]
    code: list[list] = field(default_factory=list)

    def emit(self, *instr) -> int:
        """Append an instruction; its index (a jump target)."""
        self.code.append(list(instr))
        return len(self.code) - 1

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "num_regs": self.num_regs,
            "heap": self.heap,
            "code": self.code,
        }

    @staticmethod
    def from_json(data: dict) -> VMFunction:
        try:
            func = VMFunction(
                str(data["name"]),
                list(data["params"]),
                int(data["num_regs"]),
                list(data["heap"]),
                data["code"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Error(f"malformed VM function in program: {exc}") from None
        func.validate()
        return func

    def validate(self) -> None:
        """Check opcodes, arities, and that registers and jump targets are in range."""
        if not isinstance(self.code, list):
            raise Error(f"VM function '{self.name}': code is not a list")
        for pc, instr in enumerate(self.code):
            if not isinstance(instr, list) or not instr or instr[0] not in ARITY:
                raise Error(f"VM function '{self.name}': unknown instruction {instr!r} at {pc}")
            if len(instr) != ARITY[instr[0]] + 1:
                raise Error(f"VM function '{self.name}': {instr[0]} at {pc} has {len(instr) - 1} operands")
            if instr[0] in ("if", "goto"):
                target = instr[-1]
                if type(target) is not int or not 0 <= target <= len(self.code):
                    raise Error(f"VM function '{self.name}': jump target {target!r} out of range at {pc}")


@dataclass
class Program:
    """All VM functions, the kernel names they call (by index), the number of constants."""

    functions: dict[str, VMFunction]
    kernels: list[str]
    num_constants: int
    entry: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": FORMAT_VERSION,
                "entry": self.entry,
                "kernels": self.kernels,
                "num_constants": self.num_constants,
                "functions": [f.to_json() for f in self.functions.values()],
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> Program:
        try:
            data = json.loads(text)
            if data["version"] != FORMAT_VERSION:
                raise Error(f"VM program format {data['version']}, this shapeflow reads {FORMAT_VERSION}")
            functions = [VMFunction.from_json(f) for f in data["functions"]]
            return Program(
                {f.name: f for f in functions},
                [str(k) for k in data["kernels"]],
                int(data["num_constants"]),
                str(data["entry"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Error(f"malformed VM program: {exc}") from None

    def dump(self) -> str:
        """A readable listing, one instruction per line."""
        lines = []
        for f in self.functions.values():
            lines.append(f"function {f.name}({', '.join(f.params)})  regs={f.num_regs} heap={f.heap}")
            lines += [f"  {pc:4d}: {instr[0]} {json.dumps(instr[1:])}" for pc, instr in enumerate(f.code)]
        return "\n".join(lines)
