"""The object cache (codegen/llvm/object_cache.py) and what compile() builds with it: a corrupt, stale or
foreign entry is rebuilt with a warning, never trusted; a warm build runs no LLVM; structurally equal kernels
are compiled once and still give each caller the right answer; loading an artifact builds no GEMM family."""

import logging
import math
import os

import numpy as np
import pytest

import shapeflow as sf
from shapeflow import te
from shapeflow.build import build_cached, unique_functions
from shapeflow.codegen.llvm import object_cache
from shapeflow.codegen.llvm.object_cache import CacheEntry, ObjectCache, forget_all
from shapeflow.ir import Var
from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op, run
from shapeflow.passes.graph import schedule_rules
from shapeflow.passes.hierarchy import gemm as gemm_module

rng = np.random.default_rng(11)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache directory and an empty in-process layer (restored afterwards)."""
    monkeypatch.setenv(object_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(object_cache, "_MEMORY", {})
    return tmp_path / "cache"


@pytest.fixture
def compiles(monkeypatch):
    """A list that records every LLVM compile to an object file."""
    calls = []
    real = object_cache.compile_object

    def counted(text, target):
        calls.append(text)
        return real(text, target)

    monkeypatch.setattr(object_cache, "compile_object", counted)
    return calls


def _add(name: str, scale: float):
    """out[i, j] = a[i, j] * scale + b[i, j] over symbolic (n, 7); equal structure for equal `scale`."""
    n = te.var("n")
    a = te.placeholder((n, 7), "float32", name="a")
    b = te.placeholder((n, 7), "float32", name="b")
    out = te.compute((n, 7), lambda i, j: a[i, j] * scale + b[i, j], name="out")
    return te.create_prim_func([a, b, out]).with_attr("global_symbol", name)


def _call(lib, name, n, scale):
    a, b = rng.standard_normal((2, n, 7)).astype("float32")
    out = np.empty((n, 7), "float32")
    lib[name](a, b, out)
    np.testing.assert_allclose(out, a * np.float32(scale) + b, rtol=1e-5, atol=1e-6)  # FMA contraction


# -- the cache itself ------------------------------------------------------------------------------------


def test_entry_round_trip_and_key_mismatch(cache_dir):
    cache = ObjectCache()
    key = {"k": 1}
    entry = CacheEntry({"x": [1, 2]}, (b"first", b"", b"third"))
    cache.put(key, entry)
    forget_all()
    assert cache.get(key) == entry
    forget_all()
    assert cache.get({"k": 2}) is None  # another key, another file


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "empty"])
def test_damaged_entry_is_refused_with_a_warning(cache_dir, caplog, damage):
    cache = ObjectCache()
    key = {"k": "damaged"}
    cache.put(key, CacheEntry({}, (b"\x7fELF" + bytes(range(200)),)))
    path = cache.path(key)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[:-10]
    elif damage == "magic":
        data[:4] = b"XXXX"
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    forget_all()
    with caplog.at_level(logging.WARNING, logger="shapeflow.codegen"):
        assert cache.get(key) is None
    assert "compiling again" in caplog.text


def test_entry_stored_under_another_key_is_stale(cache_dir, caplog):
    """A file at the right path whose recorded key differs (another version wrote it) is not used."""
    cache = ObjectCache()
    key, other = {"k": "wanted"}, {"k": "other"}
    cache.put(other, CacheEntry({}, (b"object",)))
    cache.path(key).write_bytes(cache.path(other).read_bytes())
    forget_all()
    with caplog.at_level(logging.WARNING, logger="shapeflow.codegen"):
        assert cache.get(key) is None
    assert "stale" in caplog.text


# -- builds through the cache ----------------------------------------------------------------------------


def test_warm_build_runs_no_llvm_and_corrupt_entry_is_rebuilt(cache_dir, compiles, caplog):
    funcs = {"axpy": _add("axpy", 2.0)}
    lib = build_cached(funcs)
    assert len(compiles) == 1
    _call(lib, "axpy", 5, 2.0)
    forget_all()
    lib = build_cached(funcs)  # from disk
    assert len(compiles) == 1
    _call(lib, "axpy", 1, 2.0)
    (entry,) = (cache_dir / "objects").glob("*.sfo")
    data = bytearray(entry.read_bytes())
    data[-20] ^= 0xFF  # inside the object code: only the checksum notices
    entry.write_bytes(bytes(data))
    forget_all()
    with caplog.at_level(logging.WARNING, logger="shapeflow.codegen"):
        lib = build_cached(funcs)
    assert "corrupt" in caplog.text and len(compiles) == 2
    _call(lib, "axpy", 13, 2.0)
    forget_all()
    build_cached(funcs)  # the rewritten entry is sound again
    assert len(compiles) == 2


def test_other_shapeflow_version_rebuilds(cache_dir, compiles, monkeypatch):
    funcs = {"axpy": _add("axpy", 3.0)}
    build_cached(funcs)
    forget_all()
    monkeypatch.setattr(sf, "__version__", sf.__version__ + ".post1")
    lib = build_cached(funcs)
    assert len(compiles) == 2
    _call(lib, "axpy", 3, 3.0)


def test_equal_kernels_compiled_once_and_each_name_works(cache_dir, compiles):
    funcs = {"first": _add("first", 2.0), "second": _add("second", 2.0), "other": _add("other", 5.0)}
    unique, aliases = unique_functions(funcs)
    assert sorted(unique) == ["first", "other"] and aliases == {"second": "first"}
    lib = build_cached(funcs)
    assert len(compiles) == 2 and sorted(lib.kernels) == ["first", "other", "second"]
    for name, scale in (("first", 2.0), ("second", 2.0), ("other", 5.0)):
        for n in (1, 2, 17):
            _call(lib, name, n, scale)
    with pytest.raises(sf.ShapeError):
        lib["second"](np.zeros((3, 7), "float32"), np.zeros((3, 6), "float32"), np.zeros((3, 7), "float32"))


# -- compile() and artifacts -----------------------------------------------------------------------------

D, H = 16, 24
W1 = (rng.standard_normal((H, D)) / math.sqrt(D)).astype("float32")
W2 = (rng.standard_normal((D, H)) / math.sqrt(H)).astype("float32")


def _two_layers():
    """Two equal residual layers (same weights): their fused kernels are structurally equal."""
    b, s = Var("b"), Var("s")
    x = GraphVar("x", TensorType((b, s, D), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            h = x
            for _ in range(2):
                inner = bb.emit(op.gelu(op.linear(h, W1)))
                h = bb.emit(op.add(op.tanh(op.linear(inner, W2)), h))
            out = bb.emit_output(h)
        bb.emit_func_output(out)
    return bb.get()


def test_repeated_layers_compile_once_and_match_interpreter(cache_dir, compiles):
    schedule_rules.gemm_kernel("dense")  # the family first (built or cached), so that only kernels count
    before = len(compiles)
    exe = sf.compile(_two_layers(), dims={"b": (1, 4), "s": (1, 33)})
    symbols = {k.abi.symbol for k in exe.library.kernels.values()}
    assert len(compiles) - before == len(symbols) < len(exe.library.kernels)  # the second layer shares
    before = len(compiles)
    for b, s in ((1, 1), (2, 7), (4, 33), (3, 13)):  # several shapes, no compile at all
        x = rng.standard_normal((b, s, D)).astype("float32")
        np.testing.assert_allclose(exe(x), run(_two_layers(), x), rtol=1e-4, atol=1e-4)
    assert len(compiles) == before


def test_artifact_load_builds_no_gemm_family(cache_dir, tmp_path, monkeypatch):
    exe = sf.compile(_two_layers(), dims={"b": (1, 4), "s": (1, 33)})
    path = tmp_path / "two.sfa"
    exe.save(path)
    # A fresh process's state: no families, no table, no cache entries (a new, empty cache directory).
    monkeypatch.setenv(object_cache.CACHE_ENV, str(tmp_path / "empty"))
    monkeypatch.setattr(object_cache, "_MEMORY", {})
    monkeypatch.setattr(schedule_rules, "_KERNELS", {})
    monkeypatch.setattr(gemm_module, "_FAMILIES", {})
    monkeypatch.setattr(gemm_module, "_TABLES", {})
    built, measured = [], []
    monkeypatch.setattr(object_cache, "compile_object", lambda *a: built.append(a) or b"")
    monkeypatch.setattr(gemm_module, "load_or_measure", lambda *a, **k: measured.append(a) or [])
    loaded = sf.load(path)
    assert built == [] and measured == []
    assert schedule_rules._KERNELS  # the families exist, from the artifact's objects
    x = rng.standard_normal((3, 5, D)).astype("float32")
    np.testing.assert_allclose(loaded(x), exe(x), rtol=1e-6, atol=1e-6)
    assert not (tmp_path / "empty" / "objects").exists()


def test_directory_is_bounded_least_recently_used_first(cache_dir, monkeypatch):
    cache = ObjectCache()
    for i in range(6):
        cache.put({"i": i}, CacheEntry({}, (bytes(10_000),)))
        os.utime(cache.path({"i": i}), (1_000_000 + i, 1_000_000 + i))  # written in this order
    forget_all()
    assert cache.get({"i": 0}) is not None  # used now: it stays
    time_order = sorted((p.stat().st_mtime, p.name) for p in (cache_dir / "objects").iterdir())
    assert time_order[-1][1] == cache.path({"i": 0}).name
    assert cache.prune(25_000) == 4
    forget_all()
    assert cache.get({"i": 0}) is not None and cache.get({"i": 5}) is not None
    assert all(cache.get({"i": i}) is None for i in (1, 2, 3, 4))
    monkeypatch.setenv(object_cache.SIZE_ENV, "0")
    cache.put({"i": "unwritten"}, CacheEntry({}, (b"x",)))
    forget_all()
    assert cache.get({"i": "unwritten"}) is None
