"""Saved executables: one file with object code, the VM program, constants and the signature. No pickle.

Layout (integers little-endian):

    magic        8 bytes   b"SHAPEFLW"
    format       u32       FORMAT_VERSION (checked first: a later layout may differ past this point)
    sha256       32 bytes  of everything after it (header length, header, payload)
    header_len   u64
    header       JSON      shapeflow version, target (triple, cpu, features), ABI facts, section table
    payload      bytes     the sections: "object<i>" (the kernels' object files, header "objects" of them),
                           "gemm" (JSON: the micro-kernel table and the GEMM families the program calls,
                           with their object-cache keys) and "gemm<j>.<i>" (those families' object files),
                           "program" (VM program, JSON),
                           "kernels" (calling conventions + the lowered PrimFuncs as text, JSON),
                           "signature" (JSON), "const<i>" (.npy bytes, read with allow_pickle=False)

`load` checks, in this order and before any code is loaded: the magic, the format version, the checksum
(a truncated or altered file fails here), the shapeflow version, the target triple and CPU features, and the
ABI facts the object code was compiled with. Each failure is a `shapeflow.Error` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np

from shapeflow.errors import Error

MAGIC = b"SHAPEFLW"
FORMAT_VERSION = 2  # 2: several object files; the GEMM families' objects
_PREFIX = struct.Struct("<8sI32s")
_HEADER_LEN = struct.Struct("<Q")


def _host_target() -> dict:
    import llvmlite.binding as llvm  # noqa: PLC0415

    from shapeflow.codegen.llvm import host_cpu  # noqa: PLC0415
    from shapeflow.codegen.llvm.jit import initialize  # noqa: PLC0415

    initialize()
    cpu, features = host_cpu()
    return {"triple": llvm.get_process_triple(), "cpu": cpu, "features": features}


def _abi_facts() -> dict:
    from shapeflow.runtime.pyabi import ndarray_data_offset  # noqa: PLC0415
    from shapeflow.runtime.threadpool import thread_runtime_available  # noqa: PLC0415

    return {"ndarray_data_offset": ndarray_data_offset(), "parallel": thread_runtime_available()}


def save_executable(exe, path) -> None:
    """Write `exe` (a shapeflow.Executable) to `path`."""
    from shapeflow import __version__  # noqa: PLC0415

    library = exe.library
    lowered = {name: k.abi.func for name, k in library.kernels.items()}
    kernels = {
        "abis": [
            {
                "name": k.abi.name,
                "symbol": k.abi.symbol,
                "entry_symbol": k.abi.entry_symbol,
                "messages": list(k.abi.messages),
            }
            for k in library.kernels.values()
        ],
        "funcs": _module_text(lowered),
    }
    objects = exe.object_files()
    sections: list[tuple[str, bytes]] = [(f"object{i}", data) for i, data in enumerate(objects)]
    sections += _gemm_sections(exe.program)
    sections += [
        ("program", exe.program.to_json().encode()),
        ("kernels", json.dumps(kernels).encode()),
        ("signature", json.dumps(exe.signature).encode()),
    ]
    for i, array in enumerate(exe.constants):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        sections.append((f"const{i}", buf.getvalue()))
    table, offset = [], 0
    for name, data in sections:
        table.append({"name": name, "offset": offset, "length": len(data)})
        offset += len(data)
    target = library.target
    host = _host_target()
    header = {
        "shapeflow_version": __version__,
        "target": {
            "kind": target.kind,
            "triple": host["triple"],
            "cpu": target.cpu or host["cpu"],
            "features": target.features or (host["features"] if not target.cpu else ""),
            "opt_level": target.opt_level,
            "fast_math": target.fast_math,
            "num_threads": target.num_threads,
        },
        "abi": _abi_facts(),
        "objects": len(objects),
        "sections": table,
    }
    header_bytes = json.dumps(header).encode()
    body = _HEADER_LEN.pack(len(header_bytes)) + header_bytes + b"".join(data for _, data in sections)
    digest = hashlib.sha256(body).digest()
    Path(path).write_bytes(_PREFIX.pack(MAGIC, FORMAT_VERSION, digest) + body)


def _gemm_sections(program) -> list[tuple[str, bytes]]:
    """The GEMM families the program calls (runtime/vm/gemm_steps.py), as the object cache holds them, and
    the micro-kernel table they were chosen from: loading the artifact on this machine then compiles and
    measures nothing. On another machine (or shapeflow build) the keys differ and the families are rebuilt
    there, as the key says they must be."""
    from shapeflow.passes.graph.schedule_rules import gemm_kernel  # noqa: PLC0415

    kinds = sorted(
        {instr[1] for func in program.functions.values() for instr in func.code if instr[0] == "call_gemm"}
    )
    if not kinds:
        return []
    families, sections, table = [], [], {}
    for j, kind in enumerate(kinds):
        kernel = gemm_kernel(kind)
        key, entry = kernel.cache_entry()
        families.append({"kind": kind, "key": key, "meta": entry.meta, "objects": len(entry.objects)})
        sections += [(f"gemm{j}.{i}", data) for i, data in enumerate(entry.objects)]
        table = {"hardware": kernel.hw.key(), "table": [[r.mr, r.nr, r.gflops] for r in kernel.table]}
    return [("gemm", json.dumps({**table, "families": families}).encode()), *sections]


def _seed_gemm(text: bytes, sections: dict[str, bytes]) -> None:
    """Hand the artifact's GEMM families and micro-kernel table to this process (see `_gemm_sections`)."""
    from shapeflow.codegen.llvm.object_cache import CacheEntry, remember  # noqa: PLC0415
    from shapeflow.passes.hierarchy.gemm import seed_microkernel_table  # noqa: PLC0415
    from shapeflow.passes.hierarchy.measure import MicroKernelResult  # noqa: PLC0415

    gemm = json.loads(text)
    table = [MicroKernelResult(int(mr), int(nr), float(g)) for mr, nr, g in gemm["table"]]
    seed_microkernel_table(str(gemm["hardware"]), table)
    for j, family in enumerate(gemm["families"]):
        if not isinstance(family["key"], dict) or not isinstance(family["meta"], dict):
            raise ValueError(f"GEMM family {j} has no key or meta")
        objects = tuple(sections[f"gemm{j}.{i}"] for i in range(int(family["objects"])))
        remember(family["key"], CacheEntry(family["meta"], objects))


def _module_text(funcs: dict) -> str:
    from shapeflow.ir.module import IRModule  # noqa: PLC0415

    return IRModule(funcs).script() if funcs else ""


def read_artifact(path) -> tuple[dict, dict[str, bytes]]:
    """The verified header and sections of an artifact (no code loaded); Error if anything is wrong."""
    from shapeflow import __version__  # noqa: PLC0415

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise Error(f"cannot read artifact {str(path)!r}: {exc}") from None
    if len(data) < _PREFIX.size or data[:8] != MAGIC:
        raise Error(f"{str(path)!r} is not a shapeflow artifact (bad magic)")
    _, version, digest = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise Error(
            f"artifact {str(path)!r} has format version {version}; this shapeflow reads {FORMAT_VERSION}"
        )
    body = data[_PREFIX.size :]
    if hashlib.sha256(body).digest() != digest:
        raise Error(
            f"artifact {str(path)!r} is corrupted: checksum mismatch (the file was truncated or altered)"
        )
    try:
        (header_len,) = _HEADER_LEN.unpack_from(body)
        header = json.loads(body[_HEADER_LEN.size : _HEADER_LEN.size + header_len])
        payload = body[_HEADER_LEN.size + header_len :]
        sections = {}
        for s in header["sections"]:
            start, length = int(s["offset"]), int(s["length"])
            if start < 0 or length < 0 or start + length > len(payload):
                raise ValueError(f"section {s['name']} lies outside the payload")
            sections[str(s["name"])] = payload[start : start + length]
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise Error(f"artifact {str(path)!r} has a malformed header: {exc}") from None
    if header.get("shapeflow_version") != __version__:
        raise Error(
            f"artifact {str(path)!r} was written by shapeflow {header.get('shapeflow_version')}; "
            f"this is shapeflow {__version__} (compile the model again)"
        )
    _check_target(str(path), header.get("target") or {}, header.get("abi") or {})
    return header, sections


def _check_target(path: str, target: dict, abi: dict) -> None:
    host = _host_target()
    if target.get("kind") != "cpu":
        raise Error(
            f"artifact {path!r} is for target {target.get('kind')!r}; only cpu artifacts can be loaded"
        )
    if target.get("triple") != host["triple"]:
        raise Error(
            f"artifact {path!r} was compiled for {target.get('triple')}, this machine is {host['triple']}"
        )
    have = {f[1:] for f in host["features"].split(",") if f.startswith("+")}
    need = {f[1:] for f in str(target.get("features", "")).split(",") if f.startswith("+")}
    missing = sorted(need - have)
    if missing:
        raise Error(
            f"artifact {path!r} was compiled for CPU {target.get('cpu')} with features this CPU lacks: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
        )
    facts = _abi_facts()
    if abi.get("ndarray_data_offset") != facts["ndarray_data_offset"]:
        raise Error(f"artifact {path!r} was compiled for a numpy with another array layout; compile it again")
    if abi.get("parallel") and not facts["parallel"]:
        raise Error(f"artifact {path!r} needs the libgomp thread runtime, which this process cannot load")


class LoadedObjects:
    """Object files loaded into one MCJIT engine; what `Library` needs of a JIT module (`address`).

    Used for artifacts and for kernels taken from (or put into) the object cache (shapeflow.build)."""

    def __init__(self, objects, target):
        import llvmlite.binding as llvm  # noqa: PLC0415

        from shapeflow.codegen.llvm import target_machine  # noqa: PLC0415
        from shapeflow.runtime import threadpool  # noqa: PLC0415

        threadpool.load_thread_runtime()  # GOMP_* symbols, and __shapeflow_num_threads is registered
        machine = target_machine(target.cpu, target.features, target.opt_level)
        self.objects = tuple(objects)
        self.module = llvm.parse_assembly("")
        self.engine = llvm.create_mcjit_compiler(self.module, machine)
        for data in self.objects:
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(data))
        self.engine.finalize_object()

    def address(self, symbol: str) -> int:
        address = self.engine.get_function_address(symbol)
        if not address:
            raise Error(f"symbol '{symbol}' is missing from the loaded object code")
        return address


def load(path):
    """Read an artifact written by `Executable.save` and return the Executable."""
    from shapeflow.codegen.llvm import KernelABI, symbolic_vars  # noqa: PLC0415
    from shapeflow.executable import Executable  # noqa: PLC0415
    from shapeflow.ir import parse  # noqa: PLC0415
    from shapeflow.runtime.library import Library  # noqa: PLC0415
    from shapeflow.runtime.vm.program import Program  # noqa: PLC0415
    from shapeflow.target import Target  # noqa: PLC0415

    header, sections = read_artifact(path)
    try:
        kernels = json.loads(sections["kernels"])
        program = Program.from_json(sections["program"].decode())
        signature = json.loads(sections["signature"])
        constants = []
        for i in range(program.num_constants):
            constants.append(np.load(io.BytesIO(sections[f"const{i}"]), allow_pickle=False))
        objects = [sections[f"object{i}"] for i in range(int(header["objects"]))]
        if "gemm" in sections:
            _seed_gemm(sections["gemm"], sections)
        funcs = parse(kernels["funcs"]) if kernels["funcs"] else None
        abis = {}
        for a in kernels["abis"]:
            func = funcs[a["name"]]
            abis[a["name"]] = KernelABI(
                a["name"], a["symbol"], a["entry_symbol"], func, symbolic_vars(func), tuple(a["messages"])
            )
        t = header["target"]
        target = Target(
            "cpu",
            cpu=t["cpu"],
            features=t["features"],
            num_threads=t["num_threads"],
            fast_math=t["fast_math"],
            opt_level=t["opt_level"],
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise Error(f"artifact {str(path)!r} is malformed: {type(exc).__name__}: {exc}") from None
    library = Library(LoadedObjects(objects, target), abis, "", target)
    return Executable(program, library, constants, signature, object_files=objects)
