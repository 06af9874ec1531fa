"""shapeflow.codegen: backends that turn lowered loop IR into machine code.

`llvm/` renders PrimFuncs to LLVM IR with llvmlite and compiles them for the host CPU; a CUDA backend will
sit beside it. Backends are small renderers over the IR that the lowering passes produce.
"""
