"""`shapeflow.build`: loop-level functions to callable kernels.

    lib = shapeflow.build(mod, target="cpu")
    lib["add"](a, b, out)

The pipeline, top to bottom:
1. lower (shapeflow.passes.tir.lower): blocks to loops, flattening, vectorization; the code generator takes
   lowered IR only.
2. render LLVM IR (shapeflow.codegen.llvm), with the thread-runtime and numpy-ABI facts of this process.
3. optimize at `target.opt_level` for the target CPU, then load with MCJIT.
4. wrap each kernel with its argument checker (shapeflow.runtime.library).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from shapeflow.errors import UnsupportedError
from shapeflow.ir.module import IRModule
from shapeflow.ir.tir.function import PrimFunc
from shapeflow.target import Target


def _functions(mod) -> dict[str, PrimFunc]:
    if isinstance(mod, PrimFunc):
        name = str(mod.attrs.get("global_symbol", "main"))
        return {name: mod}
    if isinstance(mod, IRModule):
        out = {}
        for name, func in mod.items():
            if not isinstance(func, PrimFunc):
                raise UnsupportedError(
                    f"build compiles loop-level functions; '{name}' is a {type(func).__name__} "
                    "(use shapeflow.compile for graph-level programs)"
                )
            out[name] = func
        return out
    raise UnsupportedError(f"build takes an IRModule or a PrimFunc, got {type(mod).__name__}")


def _lower(functions: dict[str, PrimFunc]) -> dict[str, PrimFunc]:
    from shapeflow.passes.tir import lower  # noqa: PLC0415

    lowered = lower(IRModule(functions))
    return {name: lowered[name] for name in lowered.functions}


def build(mod, target: str | Target = "cpu", *, lower: bool = True):
    """Compile the PrimFuncs of `mod` (an IRModule or one PrimFunc) for `target`; a `Library` of kernels.

    `lower=False` skips the lowering passes, for IR that is already lowered (tests of the code generator).
    """
    target = Target.from_str(target)
    if target.kind != "cpu":
        raise UnsupportedError(f"target '{target.kind}' is not supported by build yet (only cpu)")
    functions = _functions(mod)
    if lower:
        functions = _lower(functions)
    return build_cpu(functions, target)


def _codegen_options(target: Target):
    from shapeflow.codegen.llvm import CodegenOptions  # noqa: PLC0415
    from shapeflow.runtime.pyabi import ndarray_data_offset  # noqa: PLC0415
    from shapeflow.runtime.threadpool import thread_runtime_available  # noqa: PLC0415

    return CodegenOptions(
        float_mode=target.float_mode,
        parallel=thread_runtime_available(),
        ndarray_data_offset=ndarray_data_offset(),
        num_threads=target.num_threads,
    )


def build_cpu(functions: dict[str, PrimFunc], target: Target):
    from shapeflow.codegen.llvm import (  # noqa: PLC0415
        JITModule,
        generate_llvm_ir,
        optimize,
        parse_and_verify,
        target_machine,
    )
    from shapeflow.runtime.library import Library  # noqa: PLC0415

    machine = target_machine(target.cpu, target.features, target.opt_level)
    text, abis = generate_llvm_ir(
        functions, _codegen_options(target), triple=machine.triple, data_layout=str(machine.target_data)
    )
    module = parse_and_verify(text)
    optimize(module, machine, target.opt_level)
    return Library(JITModule(module, machine), abis, text, target)


# -- cached builds (compile() and the GEMM families) --------------------------------------------------------


def _without_symbol(func: PrimFunc) -> PrimFunc:
    attrs = {k: v for k, v in func.attrs.items() if k != "global_symbol"}
    return func if len(attrs) == len(func.attrs) else PrimFunc(func.params, func.body, attrs)


def unique_functions(functions: dict[str, PrimFunc]) -> tuple[dict[str, PrimFunc], dict[str, str]]:
    """`(representatives, {duplicate name: representative name})`: functions structurally equal up to their
    names (shapeflow.ir.structural; repeated layers of a model give many) are compiled once."""
    from shapeflow.ir.structural import structural_equal, structural_hash  # noqa: PLC0415

    unique: dict[str, PrimFunc] = {}
    bare: dict[str, PrimFunc] = {}
    by_hash: dict[int, list[str]] = {}
    aliases: dict[str, str] = {}
    for name, func in functions.items():
        stripped = _without_symbol(func)
        candidates = by_hash.setdefault(structural_hash(stripped), [])
        rep = next((c for c in candidates if structural_equal(bare[c], stripped)), None)
        if rep is None:
            candidates.append(name)
            unique[name], bare[name] = func, stripped
        else:
            aliases[name] = rep
    return unique, aliases


def _abi_meta(abis: dict) -> dict:
    return {
        name: {"symbol": a.symbol, "entry_symbol": a.entry_symbol, "messages": list(a.messages)}
        for name, a in abis.items()
    }


def _abis_from_meta(meta: dict, functions: dict[str, PrimFunc]) -> dict | None:
    """The calling conventions a cache entry recorded, rebuilt over `functions`; None if they disagree."""
    from shapeflow.codegen.llvm import KernelABI, symbolic_vars  # noqa: PLC0415

    if sorted(meta) != sorted(functions):
        return None
    try:
        return {
            name: KernelABI(
                name,
                str(m["symbol"]),
                None if m["entry_symbol"] is None else str(m["entry_symbol"]),
                func,
                symbolic_vars(func),
                tuple(str(x) for x in m["messages"]),
            )
            for name, func in functions.items()
            for m in (meta[name],)
        }
    except (KeyError, TypeError):
        return None


def _compile_entry(functions: dict[str, PrimFunc], target: Target, options):
    """One LLVM module of `functions` compiled to an object: (its IR text, ABIs, cache entry)."""
    from shapeflow.codegen.llvm import generate_llvm_ir, target_machine  # noqa: PLC0415
    from shapeflow.codegen.llvm.object_cache import CacheEntry, compile_object  # noqa: PLC0415

    machine = target_machine(target.cpu, target.features, target.opt_level)
    text, abis = generate_llvm_ir(
        functions, options, triple=machine.triple, data_layout=str(machine.target_data)
    )
    return text, abis, CacheEntry(_abi_meta(abis), (compile_object(text, target),))


def build_cached(
    functions: dict[str, PrimFunc],
    target: str | Target = "cpu",
    *,
    lower: bool = True,
    key: dict | None = None,
    prepare: Callable[[PrimFunc], PrimFunc] | None = None,
):
    """A `Library` of `functions` whose object code comes from the object cache when it can
    (shapeflow.codegen.llvm.object_cache), else is compiled once and cached.

    Without `key`, structurally equal functions are compiled once, and each remaining function is its own
    cache entry keyed by its LLVM IR text: a model compiled again, or one sharing kernels with another,
    runs LLVM only for what is new. `prepare` (e.g. a default schedule) is applied to each distinct
    function before lowering. LLVM runs on a worker thread (llvmlite releases the GIL) while the next
    function is prepared, lowered and rendered. With `key` (a description of what `functions` are, e.g. a
    GEMM family's parameters), the whole set is one entry under that key plus the toolchain, so a hit
    generates no IR.
    """
    from shapeflow.codegen.llvm.object_cache import (  # noqa: PLC0415
        BACKEND_SOURCES,
        ObjectCache,
        toolchain_key,
    )
    from shapeflow.runtime.artifact import LoadedObjects  # noqa: PLC0415
    from shapeflow.runtime.library import Library  # noqa: PLC0415

    target = Target.from_str(target)
    if target.kind != "cpu":
        raise UnsupportedError(f"target '{target.kind}' is not supported by build yet (only cpu)")
    cache = ObjectCache()
    options = _codegen_options(target)
    if key is not None:
        if prepare is not None:
            functions = {name: prepare(f) for name, f in functions.items()}
        functions = _lower(functions) if lower else dict(functions)
        full_key = family_cache_key(key, target)
        entry = cache.get(full_key)
        abis = _abis_from_meta(entry.meta, functions) if entry is not None else None
        if abis is None:
            _, abis, entry = _compile_entry(functions, target, options)
            cache.put(full_key, entry)
        return Library(LoadedObjects(entry.objects, target), abis, "", target)
    unique, aliases = unique_functions(functions)
    toolchain = toolchain_key(target, options, BACKEND_SOURCES)
    abis, objects = _build_each(unique, target, options, toolchain, cache, prepare, lower)
    for alias, rep in aliases.items():
        abis[alias] = dataclasses.replace(abis[rep], name=alias)
    return Library(LoadedObjects(objects, target), {name: abis[name] for name in functions}, "", target)


def family_cache_key(key: dict, target: str | Target = "cpu") -> dict:
    """The full object-cache key `build_cached(..., key=key)` uses for `target` (toolchain included)."""
    from shapeflow.codegen.llvm.object_cache import toolchain_key  # noqa: PLC0415

    target = Target.from_str(target)
    return {**toolchain_key(target, _codegen_options(target)), "functions": key}


def library_cache_entry(library):
    """The object-cache entry (ABI facts and object files) of a Library `build_cached` returned."""
    from shapeflow.codegen.llvm.object_cache import CacheEntry  # noqa: PLC0415

    objects = getattr(library._jit, "objects", None)
    if objects is None:
        raise UnsupportedError(
            "this library was not built from object files (build it with shapeflow.build.build_cached)"
        )
    return CacheEntry(_abi_meta({name: k.abi for name, k in library.kernels.items()}), tuple(objects))


def _build_each(
    functions: dict[str, PrimFunc], target: Target, options, toolchain: dict, cache, prepare, lower
):
    """Each function prepared, lowered and rendered in its own module, cached under its IR text; LLVM for
    the misses runs on one worker thread meanwhile (llvmlite serializes LLVM calls itself, so one is
    enough). (ABIs, object files)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from shapeflow.codegen.llvm import generate_llvm_ir, object_cache, target_machine  # noqa: PLC0415

    machine = target_machine(target.cpu, target.features, target.opt_level)
    triple, layout = machine.triple, str(machine.target_data)
    abis: dict = {}
    pending: list[tuple[dict, object]] = []  # (key, cached entry or future object file)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shapeflow-llvm") as llvm_worker:
        for name, func in functions.items():
            if prepare is not None:
                func = prepare(func)
            if lower:
                func = _lower({name: func})[name]
            text, one = generate_llvm_ir(
                {name: func}, options, triple=triple, data_layout=layout, module_name=name
            )
            key = {**toolchain, "ir": object_cache.text_digest(text)}
            entry = cache.get(key)
            pending.append((key, entry or llvm_worker.submit(object_cache.compile_object, text, target)))
            abis.update(one)
        objects: list[bytes] = []
        for key, found in pending:
            if not isinstance(found, object_cache.CacheEntry):
                found = object_cache.CacheEntry({}, (found.result(),))
                cache.put(key, found)
            objects.extend(found.objects)
    return abis, objects
