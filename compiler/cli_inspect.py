"""`shapeflow inspect FILE`: what a model or a compiled artifact holds, without running it.

- MODEL.onnx: opsets, inputs and outputs with their symbolic dims, initializers, operator counts; then the
  model as shapeflow imports it, through the graph pipeline: kernels and the memory plan.
- MODULE.txt (the text format): the same from the graph pipeline.
- MODEL.sfa: target, signature, bounds of the symbolic dims, kernels and how often each is called, the
  memory plan (the storages the VM allocates, with sizes over the symbolic dims), constants.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import TextIO

from shapeflow.errors import Error


def _bytes(n) -> str:
    if not isinstance(n, int):
        return f"{n} bytes"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _onnx_dim(d) -> str:
    if d.HasField("dim_value"):
        return str(d.dim_value)
    return d.dim_param or "?"


def _onnx_value(v) -> str:
    from onnx import helper  # noqa: PLC0415

    t = v.type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"
    shape = "(" + ", ".join(_onnx_dim(d) for d in t.shape.dim) + ")" if t.HasField("shape") else "(?)"
    return f"{v.name}: {dtype}{shape}"


def describe_onnx(model, out: TextIO) -> None:
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    init_names = {t.name for t in graph.initializer}
    init_bytes = sum(int(numpy_helper.to_array(t).nbytes) for t in graph.initializer)
    print(
        f"ONNX model: ir_version {model.ir_version}, opset {opsets}, producer {model.producer_name or '?'}",
        file=out,
    )
    print("inputs:", file=out)
    for v in graph.input:
        if v.name not in init_names:
            print(f"  {_onnx_value(v)}", file=out)
    print("outputs:", file=out)
    for v in graph.output:
        print(f"  {_onnx_value(v)}", file=out)
    print(f"initializers: {len(graph.initializer)} ({_bytes(init_bytes)})", file=out)
    counts = Counter(n.op_type if not n.domain else f"{n.domain}.{n.op_type}" for n in graph.node)
    ops = ", ".join(f"{op} {k}" for op, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"operators: {len(graph.node)} nodes, {len(counts)} types: {ops}", file=out)


def describe_module(mod, out: TextIO, title: str) -> None:
    """Graph functions with their types and bounds, the kernels, and each function's memory plan."""
    from shapeflow.ir.graph import GraphFunction  # noqa: PLC0415
    from shapeflow.passes.graph import memory_plan  # noqa: PLC0415

    graph_funcs = {n: f for n, f in mod.items() if isinstance(f, GraphFunction)}
    kernels = [n for n, f in mod.items() if not isinstance(f, GraphFunction)]
    print(title, file=out)
    from shapeflow.compile import _type_text  # noqa: PLC0415

    for name, func in graph_funcs.items():
        params = ", ".join(f"{p.name}: {_type_text(p.type)}" for p in func.params)
        print(f"  function {name}({params}) -> {_type_text(func.ret_type)}", file=out)
        bounds = func.attrs.get("var_bounds") or {}
        if bounds:
            print(
                "    symbolic dims: " + ", ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in bounds.items()),
                file=out,
            )
        plan = memory_plan(func)
        if plan:
            sizes = ", ".join(_bytes(s) for s in plan["storage"])
            print(
                f"    memory plan: {len(plan['tensors'])} intermediates in {len(plan['storage'])} storages "
                f"({_bytes(plan['planned_bytes'])} planned for {_bytes(plan['intermediate_bytes'])} "
                f"of intermediates): {sizes}",
                file=out,
            )
    print(f"  kernels ({len(kernels)}): {', '.join(kernels) or 'none'}", file=out)


def _pipeline(mod, dims):
    from shapeflow.compile import with_dim_bounds  # noqa: PLC0415
    from shapeflow.passes.graph import graph_pipeline  # noqa: PLC0415

    return graph_pipeline(2)(with_dim_bounds(mod, dims))


def describe_artifact(path: Path, out: TextIO) -> None:
    import shapeflow  # noqa: PLC0415
    from shapeflow.cli_model import entry_bounds  # noqa: PLC0415
    from shapeflow.runtime.artifact import read_artifact  # noqa: PLC0415
    from shapeflow.runtime.vm.shape_code import describe  # noqa: PLC0415

    header, _sections = read_artifact(path)
    exe = shapeflow.load(path)
    t = header["target"]
    print(
        f"shapeflow artifact {path.name} ({_bytes(path.stat().st_size)}): "
        f"shapeflow {header['shapeflow_version']}, "
        f"target {t['kind']} {t['triple']} cpu {t['cpu']}, {t.get('num_threads') or 'all'} threads",
        file=out,
    )
    for name, sig in exe.signature.items():
        params = ", ".join(f"{n}: {ty}" for n, ty in sig["params"])
        print(
            f"  function {name}({params}) -> {sig['ret']}{'   (entry)' if name == exe.entry else ''}",
            file=out,
        )
    bounds = entry_bounds(exe)
    if bounds:
        print(
            "  symbolic dims: " + ", ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in bounds.items()), file=out
        )
    calls: Counter = Counter()
    for func in exe.program.functions.values():
        for instr in func.code:
            if instr[0] == "call_tir":
                calls[exe.program.kernels[instr[1]]] += 1
            elif instr[0] == "call_lib":
                calls[f"library:{instr[1]}"] += 1
        storages = [describe(instr[2], func.heap) for instr in func.code if instr[0] == "alloc_storage"]
        if storages:
            shown = ", ".join(_bytes(int(s)) if s.isdigit() else f"{s} B" for s in storages)
            total = _storage_total(func, storages)
            print(f"  memory plan of {func.name}: {len(storages)} storages{total}: {shown}", file=out)
    print(f"  kernels ({len(exe.program.kernels)}):", file=out)
    for kernel in exe.program.kernels:
        print(f"    {kernel}  x{calls.get(kernel, 0)}", file=out)
    const_bytes = sum(int(c.nbytes) for c in exe.constants)
    print(f"  constants: {len(exe.constants)} ({_bytes(const_bytes)})", file=out)


def _storage_total(func, storages: list[str]) -> str:
    if all(s.isdigit() for s in storages):
        return f" ({_bytes(sum(int(s) for s in storages))})"
    return ""


def cmd_inspect(args: argparse.Namespace) -> int:
    from shapeflow.cli_model import collect_dims, import_model, load_source  # noqa: PLC0415

    path = Path(args.file)
    if not path.is_file():
        raise Error(f"no such file: {path}")
    out = args.out
    if path.suffix == ".sfa":
        describe_artifact(path, out)
        return 0
    source = load_source(path)
    if path.suffix == ".onnx":
        describe_onnx(source, out)
        out.flush()
    dims = collect_dims(args.dim)
    mod = import_model(source, dims)
    describe_module(_pipeline(mod, dims), out, "as shapeflow compiles it (graph pipeline, -O2):")
    return 0
