"""Compile time: the one-time micro-kernel library build, then compiling models, cold and warm.

    python benchmarks/compile_time.py [--models mlp encoder bert resnet50] [--repeat 2] [--no-cold] [--out F]

Every measurement runs in a fresh Python process (nothing cached in memory) with its own
SHAPEFLOW_CACHE_DIR, so that what is on disk is exactly what the row says:

- library: an empty cache directory; the micro-kernel table is measured and the three GEMM families
  (dense, gemm, batched; symbolic M, N, K) are built. This is the one-time, per-machine cost.
- cold_s: `shapeflow.compile(model)` in an empty cache directory (the library build included).
- compile_s: the model's first compile after the library build (a copy of the library's directory: GEMM
  families cached, none of this model's kernels).
- recompile_s: the same model compiled again (its kernels cached too).
- load_s: `shapeflow.load` of the saved artifact in a fresh process with an empty cache directory, plus the
  first call (nothing may be compiled or measured there).
- shapes: the compiled executable called at several shapes of its symbolic dims; `llvm_builds_during_calls`
  counts LLVM module parses and object loads during those calls (0: no compile at any shape). Compile time
  cannot depend on the number of shapes served: compile() is given no shapes, only dim bounds.

Times are best of --repeat (cold: one run); `*_cpu_s` are the same runs' process CPU seconds (all threads),
which contention for the cores inflates far less than wall time. Load averages (1, 5, 15 min) are printed
at the start and the end; on a shared machine compare rows of one run. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("mlp", "encoder", "bert", "resnet50")
# Shapes each model is called at after compiling, by its symbolic dims.
SHAPES = {
    "mlp": [{"b": 1, "s": 1}, {"b": 1, "s": 17}, {"b": 2, "s": 64}, {"b": 8, "s": 3}],
    "encoder": [{"b": 1, "s": 1}, {"b": 1, "s": 17}, {"b": 2, "s": 64}, {"b": 8, "s": 3}],
    "bert": [{"batch": 1, "seq": 1}, {"batch": 1, "seq": 17}, {"batch": 2, "seq": 64}],
    "resnet50": [{"batch": 1}, {"batch": 2}],
}


# -- child processes ---------------------------------------------------------------------------------------


def _model(name: str):
    """(model, dims, make inputs from a shape dict)."""
    import numpy as np  # noqa: PLC0415

    sys.path.insert(0, str(HERE))
    rng = np.random.default_rng(0)
    if name in ("mlp", "encoder"):
        import encoder  # noqa: PLC0415

        weights = encoder.make_weights()
        names = encoder.MLP_PARAMS if name == "mlp" else encoder.ENCODER_PARAMS
        params = [weights[n] for n in names]

        def inputs(p):
            x = rng.standard_normal((p["b"], p["s"], encoder.HIDDEN)).astype("float32")
            return [x, *params]

        return encoder.shapeflow_model(name), encoder.DIMS, inputs
    import onnx_models  # noqa: PLC0415

    if name == "bert":
        hidden = onnx_models.BERT["hidden"]
        return (
            onnx_models.bert_model(),
            onnx_models.BERT_DIMS,
            lambda p: [rng.standard_normal((p["batch"], p["seq"], hidden)).astype("float32")],
        )
    return (
        onnx_models.resnet50_model(),
        onnx_models.RESNET_DIMS,
        lambda p: [rng.standard_normal((p["batch"], 3, 224, 224)).astype("float32")],
    )


def _count_llvm_builds() -> list:
    """Count LLVM module parses and object-file loads from now on (what any compile does)."""
    import llvmlite.binding as llvm  # noqa: PLC0415

    calls: list = []
    parse, add_object = llvm.parse_assembly, llvm.ExecutionEngine.add_object_file

    def counted_parse(text, *a, **k):
        if str(text).strip():  # an empty module only hosts loaded object files
            calls.append("parse")
        return parse(text, *a, **k)

    def counted_add(self, *a, **k):
        calls.append("object")
        return add_object(self, *a, **k)

    llvm.parse_assembly = counted_parse
    llvm.ExecutionEngine.add_object_file = counted_add
    return calls


def child_library() -> dict:
    """Measure the micro-kernel table and build the three GEMM families (into SHAPEFLOW_CACHE_DIR)."""
    t0, c0 = time.perf_counter(), time.process_time()
    from shapeflow.passes.graph.schedule_rules import gemm_kernel  # noqa: PLC0415
    from shapeflow.passes.hierarchy import microkernel_table  # noqa: PLC0415

    imported = time.perf_counter()
    microkernel_table()
    table = time.perf_counter()
    families = {}
    for kind in ("dense", "gemm", "batched"):
        t = time.perf_counter()
        gemm_kernel(kind)
        families[kind] = round(time.perf_counter() - t, 3)
    return {
        "import_s": round(imported - t0, 3),
        "microkernel_table_s": round(table - imported, 3),
        "families_s": families,
        "total_s": round(time.perf_counter() - t0, 3),
        "total_cpu_s": round(time.process_time() - c0, 3),
    }


def child_compile(name: str, save: str | None) -> dict:
    """Compile `name` (timed, model construction excluded), then call it at SHAPES[name]."""
    import numpy as np  # noqa: PLC0415

    import shapeflow as sf  # noqa: PLC0415

    model, dims, inputs = _model(name)
    t0, c0 = time.perf_counter(), time.process_time()
    exe = sf.compile(model, target="cpu", dims=dims)
    compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    builds = _count_llvm_builds()
    served = []
    for shape in SHAPES[name]:
        args = inputs(shape)
        t = time.perf_counter()
        out = exe(*args)
        served.append({**shape, "first_call_ms": round((time.perf_counter() - t) * 1e3, 2)})
        assert np.all(np.isfinite(np.asarray(out[0] if isinstance(out, tuple) else out)))
    result = {
        "compile_s": round(compile_s, 3),
        "compile_cpu_s": round(compile_cpu_s, 3),
        "shapes": served,
        "llvm_builds_during_calls": len(builds),
    }
    if save:
        exe.save(save)
        np.save(save + ".in.npy", inputs(SHAPES[name][0])[0])
    return result


def child_load(path: str) -> dict:
    """Load an artifact and call it once (its first shape; weights are re-made for the mlp/encoder)."""
    import numpy as np  # noqa: PLC0415

    t0 = time.perf_counter()
    import shapeflow as sf  # noqa: PLC0415

    imported = time.perf_counter()
    builds = _count_llvm_builds()
    exe = sf.load(path)
    loaded = time.perf_counter()
    x = np.load(path + ".in.npy")
    name = Path(path).stem
    args = [x]
    if name in ("mlp", "encoder"):
        sys.path.insert(0, str(HERE))
        import encoder  # noqa: PLC0415

        weights = encoder.make_weights()
        args += [weights[n] for n in (encoder.MLP_PARAMS if name == "mlp" else encoder.ENCODER_PARAMS)]
    exe(*args)
    return {
        "import_s": round(imported - t0, 3),
        "load_s": round(loaded - imported, 3),
        "first_call_s": round(time.perf_counter() - loaded, 3),
        "llvm_parses": builds.count("parse"),
    }


# -- the driver --------------------------------------------------------------------------------------------


def _run(args: list[str], cache: Path) -> dict:
    env = {**os.environ, "SHAPEFLOW_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best(runs: list[dict], field: str):
    values = [r[field] for r in runs if field in r]
    return min(values) if values else None


def main() -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--repeat", type=int, default=2, help="runs per warm measurement (best of)")
    parser.add_argument("--no-cold", action="store_true", help="skip the per-model empty-cache compiles")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {
            "library": lambda: child_library(),
            "compile": lambda: child_compile(rest[0], rest[1] if len(rest) > 1 else None),
            "load": lambda: child_load(rest[0]),
        }[kind]()
        print(json.dumps(result))
        return result
    report: dict = {"load_average_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="sf-compile-time-") as tmp:
        tmp = Path(tmp)
        library_dir = tmp / "library"
        report["library"] = _run(["--child", "library"], library_dir)
        models = {}
        for name in args.models:
            row: dict = {}
            if not args.no_cold:
                cold = _run(["--child", "compile", name], tmp / f"{name}-cold")
                row["cold_s"], row["cold_cpu_s"] = cold.get("compile_s"), cold.get("compile_cpu_s")
            firsts, agains = [], []
            for r in range(args.repeat):
                cache = tmp / f"{name}-{r}"
                shutil.copytree(library_dir, cache)
                artifact = str(tmp / f"{name}.sfa") if r == 0 else None
                firsts.append(_run(["--child", "compile", name, *([artifact] if artifact else [])], cache))
                agains.append(_run(["--child", "compile", name], cache))
            row["compile_s"] = _best(firsts, "compile_s")
            row["recompile_s"] = _best(agains, "compile_s")
            row["compile_cpu_s"] = _best(firsts, "compile_cpu_s")
            row["recompile_cpu_s"] = _best(agains, "compile_cpu_s")
            row["compile_runs_s"] = [f.get("compile_s", f.get("error")) for f in firsts]
            row["recompile_runs_s"] = [a.get("compile_s", a.get("error")) for a in agains]
            row["shapes"] = firsts[0].get("shapes")
            row["llvm_builds_during_calls"] = firsts[0].get("llvm_builds_during_calls")
            if (tmp / f"{name}.sfa").exists():
                row["artifact"] = _run(["--child", "load", str(tmp / f"{name}.sfa")], tmp / f"{name}-load")
            models[name] = row
            print(json.dumps({name: row}), file=sys.stderr)
        report["models"] = models
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return report


if __name__ == "__main__":
    main()
