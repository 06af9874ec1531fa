"""ResNet-50's conv2d layers (+ bias + relu) side by side: shapeflow vs numpy (im2col + BLAS) and torch.

    python benchmarks/conv2d.py [--threads 2] [--batches 1 8] [--repeat 20] [--symbolic-hw] [--out FILE]

Layers: the distinct (C, H, W, O, k, stride) of ResNet-50 v1.5 (stride in the 3x3 conv; padding k // 2),
each as relu(conv2d(x, W) + bias) with a constant weight and bias. Each layer is compiled once by
`shapeflow.compile` with a symbolic batch (`--symbolic-hw`: H and W symbolic too) and run at every
`--batches` size; on the same input, in the same process, interleaved:
- numpy: the patch matrix of the padded input by `sliding_window_view` (one copy), one `matmul` with the
  (C*k*k, O) weight on the BLAS numpy links (OpenBLAS in our venvs), bias and relu in place;
- torch: `F.relu(F.conv2d(x, W, b, stride, padding))` with `torch.set_num_threads(threads)`.
Latency is the best and median of `--repeat` calls after a warm-up; `vs_X` is X's median / shapeflow's (above
1: shapeflow faster), `vs_X_best` the same of the best times (steadier on a loaded machine, where a median
of 2-thread runs measures the scheduler); the summary has geometric means and GFLOP/s (2 * N*O*OH*OW*C*k*k /
shapeflow's median). The thread count is set for the BLAS (environment, before numpy loads), torch and
shapeflow's pool. Prints JSON: one line per layer and batch, then the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from functools import partial


def resnet50_convs() -> list[tuple[int, int, int, int, int, int]]:
    """Distinct (C, H, W, O, k, stride) of ResNet-50 v1.5 at 224x224, in network order."""
    layers = [(3, 224, 224, 64, 7, 2)]
    c_in, size = 64, 56
    for stage, (blocks, width) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            out = size // stride
            layers += [(c_in, size, size, width, 1, 1), (width, size, size, width, 3, stride)]
            layers.append((width, out, out, width * 4, 1, 1))
            if block == 0:
                layers.append((c_in, size, size, width * 4, 1, stride))
            c_in, size = width * 4, out
    seen, distinct = set(), []
    for layer in layers:
        if layer not in seen:
            seen.add(layer)
            distinct.append(layer)
    return distinct


def compile_layer(c, h, w, o, k, stride, weight, bias, symbolic_hw: bool):
    import shapeflow as sf
    from shapeflow.ir import Var
    from shapeflow.ir.graph import BlockBuilder, GraphVar, TensorType, op

    n = Var("batch")
    hh, ww = (Var("h"), Var("w")) if symbolic_hw else (h, w)
    x = GraphVar("x", TensorType((n, c, hh, ww), "float32"))
    bb = BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = op.conv2d(x, weight, (stride, stride), (k // 2, k // 2))
            out = bb.emit_output(op.relu(op.add(y, bias.reshape(1, o, 1, 1))))
        bb.emit_func_output(out)
    dims = {"batch": (1, 16)}
    if symbolic_hw:
        dims.update(h=(1, 256), w=(1, 256))
    return sf.compile(bb.get(), dims=dims)


def numpy_conv(np, x, w2, bias, k, stride):
    """relu(im2col(x) @ w2 + bias); w2 is (C*k*k, O); returns NCHW like the others."""
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, oh, ow = windows.shape[:4]
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k)
    y = patches @ w2
    y += bias
    np.maximum(y, 0.0, out=y)
    return y.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)


def torch_conv(torch, x, w, b, stride, pad):
    with torch.no_grad():
        return torch.nn.functional.relu(torch.nn.functional.conv2d(x, w, b, stride, pad))


def timed(fn, repeat: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def measure_layer(np, torch, layer, rng, args) -> list[dict]:
    """Compile one layer, then time every peer at each batch size (JSON rows)."""
    c, h, w, o, k, stride = layer
    weight = (rng.standard_normal((o, c, k, k)) * math.sqrt(2.0 / (c * k * k))).astype("float32")
    bias = (0.01 * rng.standard_normal(o)).astype("float32")
    t0 = time.perf_counter()
    exe = compile_layer(c, h, w, o, k, stride, weight, bias, args.symbolic_hw)
    compile_s = time.perf_counter() - t0
    w2 = np.ascontiguousarray(weight.reshape(o, -1).T)
    rows = []
    for batch in args.batches:
        x = rng.standard_normal((batch, c, h, w)).astype("float32")
        want = numpy_conv(np, x, w2, bias, k, stride)
        err = float(np.max(np.abs(exe(x) - want)) / (np.max(np.abs(want)) + 1e-30))
        peers = {"shapeflow": partial(exe, x), "numpy": partial(numpy_conv, np, x, w2, bias, k, stride)}
        if torch is not None:
            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias)
            peers["torch"] = partial(torch_conv, torch, tx, tw, tb, stride, k // 2)
        samples = {name: [] for name in peers}
        for _ in range(3):  # interleaved rounds: load changes hit every peer alike
            for name, fn in peers.items():
                samples[name] += timed(fn, max(1, args.repeat // 3))
        oh, ow = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
        flops = 2.0 * batch * o * oh * ow * c * k * k
        median = {name: sorted(v)[len(v) // 2] for name, v in samples.items()}
        row = {
            "layer": {"C": c, "H": h, "W": w, "O": o, "k": k, "stride": stride},
            "batch": batch,
            "compile_s": round(compile_s, 2),
            "median_ms": {name: round(v * 1e3, 3) for name, v in median.items()},
            "best_ms": {name: round(min(v) * 1e3, 3) for name, v in samples.items()},
            "gflops": round(flops / median["shapeflow"] / 1e9, 1),
            "rel_err_vs_numpy": err,
        }
        best = {name: min(v) for name, v in samples.items()}
        for name in peers:
            if name != "shapeflow":
                row[f"vs_{name}"] = round(median[name] / median["shapeflow"], 3)
                row[f"vs_{name}_best"] = round(best[name] / best["shapeflow"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--symbolic-hw", action="store_true", help="compile with symbolic H and W too")
    parser.add_argument("--layers", type=int, nargs="*", help="indices into the layer list (default: all)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from shapeflow.runtime.threadpool import set_num_threads

    set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    layers = resnet50_convs()
    rows = []
    for index in args.layers if args.layers else range(len(layers)):
        rows += measure_layer(np, torch, layers[index], rng, args)
    summary = {"benchmark": "conv2d", "threads": args.threads, "symbolic_hw": args.symbolic_hw}
    summary["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    for batch in args.batches:
        mine = [r for r in rows if r["batch"] == batch]
        for peer in ("numpy", "torch"):
            for kind in ("", "_best"):
                ratios = [r[f"vs_{peer}{kind}"] for r in mine if f"vs_{peer}{kind}" in r]
                if ratios:
                    summary[f"geomean_vs_{peer}{kind}_batch{batch}"] = round(geomean(ratios), 3)
        summary[f"gflops_geomean_batch{batch}"] = round(geomean(r["gflops"] for r in mine), 1)
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
