"""`Executable`: what `shapeflow.compile` returns and `shapeflow.load` reads back.

    exe = shapeflow.compile(mod, dims={"n": (1, 64)})
    y = exe(x, w)              # "main" (or the only graph function)
    y = exe["encoder"](x, w)   # any graph function by name
    exe.save("model.sfa")

Inputs are numpy arrays, DLPack tensors (read with np.from_dlpack) or scalars; outputs are numpy arrays, and
tuples of them for tuple results.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shapeflow.errors import Error


class Executable:
    """A VM program with its kernels and constants, callable by function name."""

    def __init__(self, program, library, constants: list[np.ndarray], signature: dict, *, object_files=None):
        from shapeflow.runtime.vm import VirtualMachine  # noqa: PLC0415

        self.program = program
        self.library = library
        self.constants = constants
        self.signature = signature  # {function: [{"name", "type"}...]} for users and `inspect`
        # The kernels' object files, when loaded from an artifact (re-saved as they are).
        self._object_files = tuple(object_files) if object_files is not None else None
        self.vm = VirtualMachine(program, library, constants)
        self._constant_ids = {id(c) for c in constants}

    @property
    def entry(self) -> str:
        return self.program.entry

    def function_names(self) -> list[str]:
        return self.vm.function_names()

    def __call__(self, *inputs):
        return self._invoke(self.program.entry, inputs)

    def __getitem__(self, name: str) -> Callable:
        if name not in self.program.functions:
            raise KeyError(f"no function named {name!r} (has: {sorted(self.program.functions)})")
        return lambda *inputs: self._invoke(name, inputs)

    def _invoke(self, name: str, inputs):
        storage = (self.signature.get(name) or {}).get("storage")
        if not storage:
            return self._output(self.vm.invoke(name, list(inputs)))
        # float8, int4... arrays (ml_dtypes) travel as their bits: viewed on the way in and out, no copy.
        from shapeflow.storage_dtypes import view_inputs, view_outputs  # noqa: PLC0415

        return view_outputs(storage, self._output(self.vm.invoke(name, view_inputs(storage, inputs))))

    def _output(self, value):
        """Numpy arrays (tuples of them for tuple results); a constant of the program is returned as a copy,
        so that a caller writing into a result cannot change the program."""
        if isinstance(value, tuple):
            return tuple(self._output(v) for v in value)
        if value is None:
            raise Error("the function returned no value")
        if id(value) in self._constant_ids:
            return value.copy()
        return value

    def object_files(self) -> tuple[bytes, ...]:
        """The kernels as relocatable object files for this target (what an artifact stores): those the
        library was loaded from (compile() takes them from the object cache), else compiled now."""
        if self._object_files is None:
            loaded = getattr(self.library._jit, "objects", None)
            if loaded is not None:
                self._object_files = tuple(loaded)
            else:
                from shapeflow.codegen.llvm import emit_object  # noqa: PLC0415

                target = self.library.target
                obj = emit_object(self.library.llvm_ir, target.cpu, target.features, target.opt_level)
                self._object_files = (obj,)
        return self._object_files

    def save(self, path) -> None:
        """Write a versioned, checksummed artifact (see shapeflow.runtime.artifact)."""
        from shapeflow.runtime.artifact import save_executable  # noqa: PLC0415

        save_executable(self, path)

    def __repr__(self) -> str:
        return f"<shapeflow.Executable {sorted(self.program.functions)} entry={self.program.entry}>"
