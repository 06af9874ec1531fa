"""A disk cache of compiled object code, so that LLVM runs once per kernel and machine, not once per process.

    cache = ObjectCache()
    key = {**toolchain_key(target, options), "ir": text_digest(llvm_ir)}
    entry = cache.get(key)                       # None: absent, stale or corrupt (then rebuilt)
    if entry is None:
        entry = CacheEntry({}, (compile_object(llvm_ir, target),))
        cache.put(key, entry)

Why: O3 and machine-code generation are most of a model's compile time, and the GEMM families every model
shares (passes/hierarchy/gemm.py) took seconds each in every new process. An entry is keyed by everything
that decides its bytes: the toolchain (`toolchain_key`: this cache's schema, the shapeflow version, a hash of
the compiler's own source, llvmlite and LLVM versions, target triple, CPU, features, opt level, codegen
options) plus what was compiled (the LLVM IR text's digest, or a GEMM family's parameters).

Entries live in `$SHAPEFLOW_CACHE_DIR/objects/` (default `~/.cache/shapeflow`, beside the micro-kernel
table) as `<digest of key>.sfo`:

    magic   8 bytes    b"SFOBJ\\x00\\x00\\x01"
    sha256  32 bytes   of everything after it
    hlen    u64        little-endian
    header  JSON       {"key": key, "meta": meta, "lengths": [object sizes]}
    objects bytes      the relocatable object files, back to back

An entry is used only when the magic, the checksum, the header and the full key all match; anything else is
logged as a warning and rebuilt (and rewritten atomically). The directory is bounded
(`$SHAPEFLOW_OBJECT_CACHE_MB`, default 512; 0 writes nothing): past it the least recently used entries go.
Entries are also kept in memory for the process (a bounded number), and `remember` seeds that layer (an
artifact carries its GEMM families' objects this way).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("shapeflow.codegen")

SCHEMA = 1
MAGIC = b"SFOBJ\x00\x00\x01"
CACHE_ENV = "SHAPEFLOW_CACHE_DIR"
# The directory's size bound in MiB (default 512; 0 writes nothing): a fuzzing campaign compiles endless
# distinct kernels, so the least recently used entries are removed past it.
SIZE_ENV = "SHAPEFLOW_OBJECT_CACHE_MB"
DEFAULT_SIZE_MB = 512
MEMORY_ENTRIES = 2048  # the in-process layer keeps at most this many entries (oldest dropped first)
_PRUNE_EVERY = 32  # writes between two size checks of the directory
_HLEN = struct.Struct("<Q")
# The source that decides an object's bytes beyond what its key names. An entry keyed by its LLVM IR text
# depends only on the optimizing back end; one keyed by parameters (a GEMM family) also on everything that
# builds and renders its loop IR (graph-level IR and passes play no part in it).
BACKEND_SOURCES = ("shapeflow.codegen.llvm.jit", "shapeflow.codegen.llvm.object_cache")
KERNEL_SOURCES = (
    "shapeflow.codegen.llvm",
    "shapeflow.passes.hierarchy",
    "shapeflow.ir",
    "shapeflow.build",
    "shapeflow.target",
    "-shapeflow.ir.graph",
)


@dataclass(frozen=True)
class CacheEntry:
    """What a cache entry holds: JSON-able facts about the code (e.g. kernel calling conventions) and the
    object files."""

    meta: dict
    objects: tuple[bytes, ...]


def cache_dir() -> Path:
    """`$SHAPEFLOW_CACHE_DIR`, else `~/.cache/shapeflow` (read at every call, so tests can point it away)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "shapeflow")


@functools.cache
def code_hash(sources: tuple[str, ...] = KERNEL_SOURCES) -> str:
    """sha256 of the source of `sources` (modules, or packages with everything under them; "-name" leaves
    a subpackage out), once per process: an object compiled by other code is never taken from the cache."""
    import importlib.util  # noqa: PLC0415

    files: dict[str, Path] = {}
    excluded: list[Path] = []
    for name in sources:
        spec = importlib.util.find_spec(name.lstrip("-"))
        if spec is None or spec.origin is None:
            raise ValueError(f"code_hash: no module {name.lstrip('-')!r}")
        origin = Path(spec.origin)
        if name.startswith("-"):
            excluded.append(origin.parent)
        elif origin.name == "__init__.py":
            files.update({f"{name}/{p.relative_to(origin.parent)}": p for p in origin.parent.rglob("*.py")})
        else:
            files[name] = origin
    digest = hashlib.sha256()
    for label, path in sorted(files.items()):
        if any(path.is_relative_to(root) for root in excluded):
            continue
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def toolchain_key(target, options, sources: tuple[str, ...] = KERNEL_SOURCES) -> dict:
    """What, besides the code itself, decides the bytes of an object: versions, the hash of `sources`, the
    target (host CPU name and features filled in) and the codegen options (`CodegenOptions`)."""
    import llvmlite  # noqa: PLC0415
    import llvmlite.binding as llvm  # noqa: PLC0415

    import shapeflow  # noqa: PLC0415
    from shapeflow.codegen.llvm.jit import host_cpu  # noqa: PLC0415

    cpu, features = target.cpu, target.features
    if not cpu:
        cpu, host_features = host_cpu()
        features = features or host_features
    return {
        "schema": SCHEMA,
        "shapeflow": shapeflow.__version__,
        "code": code_hash(tuple(sources)),
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "triple": llvm.get_process_triple(),
        "cpu": cpu,
        "features": features,
        "opt_level": int(target.opt_level),
        "options": {
            "float_mode": options.float_mode,
            "parallel": bool(options.parallel),
            "ndarray_data_offset": options.ndarray_data_offset,
            "num_threads": options.num_threads,
        },
    }


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


_MEMORY: dict[str, tuple[dict, CacheEntry]] = {}
_MEMORY_LOCK = threading.Lock()


def remember(key: dict, entry: CacheEntry) -> None:
    """Keep `entry` under `key` for this process (no disk write)."""
    with _MEMORY_LOCK:
        _MEMORY[key_digest(key)] = (key, entry)
        while len(_MEMORY) > MEMORY_ENTRIES:
            del _MEMORY[next(iter(_MEMORY))]


def size_limit_bytes() -> int:
    try:
        return max(0, int(float(os.environ.get(SIZE_ENV, DEFAULT_SIZE_MB)) * 2**20))
    except ValueError:
        return DEFAULT_SIZE_MB * 2**20


_WRITES = [0]


def forget_all() -> None:
    """Empty the in-process layer (benchmarks measuring a cold compile, tests)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


class ObjectCache:
    """The in-process layer over the directory `directory` (default `cache_dir()` at each call)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self._directory = Path(directory) if directory is not None else None

    @property
    def directory(self) -> Path:
        return (self._directory or cache_dir()) / "objects"

    def path(self, key: dict) -> Path:
        return self.directory / f"{key_digest(key)}.sfo"

    def get(self, key: dict) -> CacheEntry | None:
        digest = key_digest(key)
        with _MEMORY_LOCK:
            found = _MEMORY.get(digest)
        if found is not None and found[0] == key:
            return found[1]
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("object cache entry %s is unreadable (%s); compiling again", path, exc)
            return None
        entry, problem = _decode(data, key)
        if entry is None:
            log.warning("object cache entry %s is %s; compiling again", path, problem)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        remember(key, entry)
        return entry

    def put(self, key: dict, entry: CacheEntry) -> None:
        """Remember `entry` and write it atomically; an unwritable directory only costs a compile later."""
        remember(key, entry)
        limit = size_limit_bytes()
        if limit == 0:
            return
        path = self.path(key)
        try:
            _write_atomic(path, _encode(key, entry))
        except OSError as exc:
            log.warning("cannot write the object cache entry %s: %s", path, exc)
            return
        _WRITES[0] += 1
        if _WRITES[0] % _PRUNE_EVERY == 1:
            self.prune(limit)

    def prune(self, limit: int | None = None) -> int:
        """Remove the least recently used entries until the directory holds at most `limit` bytes (default
        `size_limit_bytes()`); how many were removed."""
        limit = size_limit_bytes() if limit is None else limit
        try:
            files = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(self.directory)]
        except OSError:
            return 0
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, path in sorted(files):
            if total <= limit:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
            total -= size
        return removed


def _encode(key: dict, entry: CacheEntry) -> bytes:
    header = json.dumps(
        {"key": key, "meta": entry.meta, "lengths": [len(o) for o in entry.objects]}, sort_keys=True
    ).encode()
    body = _HLEN.pack(len(header)) + header + b"".join(entry.objects)
    return MAGIC + hashlib.sha256(body).digest() + body


def _decode(data: bytes, key: dict) -> tuple[CacheEntry | None, str]:
    """(entry, "") when `data` is a sound entry for exactly `key`; else (None, what is wrong)."""
    prefix = len(MAGIC) + 32
    if len(data) < prefix + _HLEN.size or data[: len(MAGIC)] != MAGIC:
        return None, "not an object cache entry (bad magic or truncated)"
    body = data[prefix:]
    if hashlib.sha256(body).digest() != data[len(MAGIC) : prefix]:
        return None, "corrupt (checksum mismatch)"
    try:
        (hlen,) = _HLEN.unpack_from(body)
        header = json.loads(body[_HLEN.size : _HLEN.size + hlen])
        lengths = [int(n) for n in header["lengths"]]
        meta = header["meta"]
        stored_key = header["key"]
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return None, f"malformed ({type(exc).__name__}: {exc})"
    if stored_key != key:
        return None, "stale (compiled for another version, source or target)"
    payload = body[_HLEN.size + hlen :]
    if any(n < 0 for n in lengths) or sum(lengths) != len(payload) or not isinstance(meta, dict):
        return None, "malformed (object sizes do not match the payload)"
    objects, offset = [], 0
    for n in lengths:
        objects.append(payload[offset : offset + n])
        offset += n
    return CacheEntry(meta, tuple(objects)), ""


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_object(text: str, target) -> bytes:
    """LLVM IR `text` optimized for `target` (as `shapeflow.build` does) into a position-independent
    relocatable object file."""
    from shapeflow.codegen.llvm.jit import optimize, parse_and_verify, target_machine  # noqa: PLC0415

    machine = target_machine(target.cpu, target.features, target.opt_level, pic=True, jit=False)
    module = parse_and_verify(text)
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    optimize(module, machine, target.opt_level)
    return machine.emit_object(module)
