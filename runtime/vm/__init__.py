"""The graph-level virtual machine: a register machine that runs compiled models.

- `program`: the instruction set and the JSON form of a program (what artifacts store)
- `shape_code`: shape expressions over the shape heap (JSON trees compiled to Python closures)
- `codegen`: a legalized graph module to a Program (registers, explicit allocation, liveness, checks)
- `machine`: `VirtualMachine`, which runs a Program with the kernels of a `Library`
"""

from shapeflow.runtime.vm.codegen import codegen, plan_kernel_call
from shapeflow.runtime.vm.machine import VirtualMachine
from shapeflow.runtime.vm.program import ARITY, Program, VMFunction
from shapeflow.runtime.vm.steps import STEP_BUILDERS

__all__ = ["codegen", "plan_kernel_call", "STEP_BUILDERS", "VirtualMachine", "ARITY", "Program", "VMFunction"]
