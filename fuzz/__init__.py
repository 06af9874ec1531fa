"""shapeflow.fuzz: a coverage-guided fuzzer of the loop IR and the pass pipeline (after Tzer).

Seeds are <PrimFunc, pass sequence> pairs. `generate` makes random executable PrimFuncs, `mutate_ir` and
`mutate_passes` mutate programs and pass sequences, `coverage` measures arc coverage of shapeflow per test,
`oracles` decide what a bug is, `campaign` runs workers in separate processes, `findings` and `minimize`
turn a failing test into a small reproducer. `mutate_text` mutates a test's printed text (parser and
verifier error paths). `mutate_schedule` draws legal schedule primitives whose steps the oracle applies
and checks against the unscheduled program. `energy` turns coverage feedback into the choice of the next
parent (power schedule) and mutation kind (operator schedule). `isolated` runs tests in a child process
with a time limit to reproduce and minimize crashes and hangs. `tvm_translate` and `tvm_oracle` are the
differential oracle against apache-tvm (`--tvm`). `graph_gen`, `graph_mutate`, `graph_oracles` and
`graph_minimize` fuzz graph functions (`--graph`). `shapeflow fuzz --help` is the command line.
"""

from shapeflow.fuzz.generate import generate_prim_func
from shapeflow.fuzz.mutate_ir import MUTATORS, Mutation, mutate

__all__ = ["generate_prim_func", "MUTATORS", "Mutation", "mutate"]
