"""ONNX models side by side: shapeflow vs onnxruntime, torch eager and apache-tvm, 2 threads each, one run.

    python benchmarks/onnx_models.py [--quick] [--threads 2] [--repeat 20] [--budget 10] [--out FILE]

Models (built with onnx.helper, random weights, no downloads):
- bert: a BERT-like encoder, 2 post-norm layers, hidden 768, 12 heads, FFN 3072, erf GELU, symbolic batch
  and sequence (shapeflow.examples_embedded.transformer_encoder_onnx, the builder of the shipped example),
  at batch 1 and sequence 1, 17, 128, 384 (--quick: 1 and 17);
- resnet50: ResNet-50 v1.5 as torch.onnx exports it in eval mode (batch norm folded into the convs:
  Conv+Relu, bottleneck blocks 3-4-6-3, MaxPool, GlobalAveragePool, Gemm), symbolic batch, at batch 1 and 8
  (--quick: 1).

Each model is compiled once for its symbolic dims (shapeflow, tvm) or loaded once (onnxruntime); the
compile times are reported. Latency is the median of up to --repeat calls after one warm-up call, fewer when
the calls take longer than --budget seconds. `vs_X` is X's latency / shapeflow's (above 1: shapeflow is
faster); the summary has the geometric mean of each ratio. torch eager runs the same ONNX graph op by op
with torch functions; tvm is `relax.frontend.onnx.from_onnx` + default `tvm.compile(target="llvm")`. A
peer that does not import or fails is reported with its error instead of numbers. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback

import numpy as np

BERT = {"hidden": 768, "heads": 12, "ffn": 3072, "layers": 2, "seed": 0}
BERT_DIMS = {"batch": (1, 8), "seq": (1, 512)}
RESNET_DIMS = {"batch": (1, 16)}


# -- models -----------------------------------------------------------------------------------------------


def bert_model():
    from shapeflow.examples_embedded import transformer_encoder_onnx

    return transformer_encoder_onnx(**BERT)


def resnet50_model(seed: int = 0, classes: int = 1000):
    """ResNet-50 v1.5 (stride in the 3x3 conv) with batch norm folded, input (batch, 3, 224, 224)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def name(hint):
        count[0] += 1
        return f"{hint}_{count[0]}"

    def conv(x, c_in, c_out, k, stride=1, relu=True):
        w, b = name("w"), name("b")
        std = np.sqrt(2.0 / (c_in * k * k))
        inits.append(
            numpy_helper.from_array((rng.standard_normal((c_out, c_in, k, k)) * std).astype("f4"), w)
        )
        inits.append(numpy_helper.from_array((0.01 * rng.standard_normal(c_out)).astype("f4"), b))
        out = name("conv")
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv", [x, w, b], [out], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4
            )
        )
        if not relu:
            return out
        act = name("relu")
        nodes.append(helper.make_node("Relu", [out], [act]))
        return act

    x = conv("image", 3, 64, 7, stride=2)
    pooled = name("maxpool")
    nodes.append(
        helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    )
    x, c_in = pooled, 64
    for stage, (blocks, width) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            h = conv(x, c_in, width, 1)
            h = conv(h, width, width, 3, stride=stride)
            h = conv(h, width, width * 4, 1, relu=False)
            shortcut = conv(x, c_in, width * 4, 1, stride=stride, relu=False) if block == 0 else x
            added, act = name("add"), name("relu")
            nodes += [
                helper.make_node("Add", [h, shortcut], [added]),
                helper.make_node("Relu", [added], [act]),
            ]
            x, c_in = act, width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["features"], axis=1))
    inits.append(numpy_helper.from_array((rng.standard_normal((classes, 2048)) * 0.02).astype("f4"), "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(classes, "f4"), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "resnet50",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="benchmarks")
    model.ir_version = 8
    return model


# -- peers ------------------------------------------------------------------------------------------------


class Shapeflow:
    name = "shapeflow"

    def __init__(self, model, dims, threads):
        import shapeflow as sf
        from shapeflow.target import Target

        self.exe = sf.compile(model, target=Target("cpu", num_threads=threads), dims=dims)

    def __call__(self, x):
        return self.exe(x)


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, model, dims, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input: x})[0]


class TorchEager:
    """The ONNX graph run node by node with torch functions (what eager PyTorch executes for the model)."""

    name = "torch_eager"

    def __init__(self, model, dims, threads):
        import torch
        from onnx import helper, numpy_helper

        torch.set_num_threads(threads)
        self.torch = torch
        self.weights = {
            i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer
        }
        self.nodes = [
            (
                n.op_type,
                list(n.input),
                list(n.output),
                {a.name: helper.get_attribute_value(a) for a in n.attribute},
            )
            for n in model.graph.node
        ]
        self.input = model.graph.input[0].name
        self.output = model.graph.output[0].name
        unknown = sorted({op for op, *_ in self.nodes} - set(_TORCH_OPS))
        if unknown:
            raise NotImplementedError(f"no torch mapping for {', '.join(unknown)}")

    def __call__(self, x):
        with self.torch.inference_mode():
            env = dict(self.weights)
            env[self.input] = self.torch.from_numpy(x)
            for op, ins, outs, attrs in self.nodes:
                env[outs[0]] = _TORCH_OPS[op](self.torch, [env[i] for i in ins], attrs)
            return env[self.output].numpy()


def _reshape(torch, a, attrs):
    shape = [int(s) if s != 0 else a[0].shape[i] for i, s in enumerate(a[1].tolist())]
    return a[0].reshape(shape)


def _conv(torch, a, attrs):
    pads = attrs.get("pads", [0, 0, 0, 0])
    return torch.nn.functional.conv2d(
        a[0],
        a[1],
        a[2] if len(a) > 2 else None,
        stride=attrs.get("strides", 1),
        padding=pads[:2],
        groups=attrs.get("group", 1),
    )


def _gemm(torch, a, attrs):
    w = a[1].T if attrs.get("transB") else a[1]
    return torch.addmm(a[2], a[0], w) if len(a) > 2 else a[0] @ w


_TORCH_OPS = {
    "MatMul": lambda t, a, k: t.matmul(a[0], a[1]),
    "Add": lambda t, a, k: a[0] + a[1],
    "Mul": lambda t, a, k: a[0] * a[1],
    "Div": lambda t, a, k: a[0] / a[1],
    "Erf": lambda t, a, k: t.erf(a[0]),
    "Relu": lambda t, a, k: t.relu(a[0]),
    "Softmax": lambda t, a, k: t.softmax(a[0], dim=k.get("axis", -1)),
    "LayerNormalization": lambda t, a, k: t.nn.functional.layer_norm(
        a[0], a[0].shape[-1:], a[1], a[2], eps=k.get("epsilon", 1e-5)
    ),
    "Transpose": lambda t, a, k: a[0].permute(*k["perm"]),
    "Reshape": _reshape,
    "Identity": lambda t, a, k: a[0],
    "Conv": _conv,
    "MaxPool": lambda t, a, k: t.nn.functional.max_pool2d(
        a[0], k["kernel_shape"], k.get("strides", 1), k.get("pads", [0, 0])[:2]
    ),
    "GlobalAveragePool": lambda t, a, k: a[0].mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda t, a, k: a[0].flatten(k.get("axis", 1)),
    "Gemm": _gemm,
}


class Tvm:
    name = "tvm"

    def __init__(self, model, dims, threads):
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx

        self.tvm = tvm
        mod = from_onnx(model)
        self.vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())

    def __call__(self, x):
        tensor = self.tvm.runtime.tensor(x) if hasattr(self.tvm.runtime, "tensor") else self.tvm.nd.array(x)
        out = self.vm["main"](tensor)
        return out.numpy()


PEERS = [Shapeflow, OnnxRuntime, TorchEager, Tvm]


# -- measuring --------------------------------------------------------------------------------------------


def measure(fn, x, repeat: int, budget: float) -> tuple[dict, np.ndarray]:
    """Latency of fn(x) and the output of its warm-up call (first-call allocations, lazy initialization)."""
    t0 = time.perf_counter()
    out = np.asarray(fn(x))
    first = time.perf_counter() - t0
    times, start = [], time.perf_counter()
    while len(times) < repeat and (not times or time.perf_counter() - start < budget):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    stats = {
        "median_ms": float(np.median(times)) * 1e3,
        "best_ms": min(times) * 1e3,
        "first_ms": first * 1e3,
        "runs": len(times),
    }
    return stats, out


def run_model(label, model, dims, points, make_input, args, skip) -> dict:
    result = {
        "model": label,
        "dims": {k: list(v) for k, v in dims.items()},
        "compile_s": {},
        "errors": {},
        "points": [],
    }
    peers = {}
    for peer in PEERS:
        if peer.name in skip:
            continue
        t0 = time.perf_counter()
        try:
            peers[peer.name] = peer(model, dims, args.threads)
            result["compile_s"][peer.name] = round(time.perf_counter() - t0, 2)
        except Exception as exc:  # a peer that cannot take the model is reported, not fatal
            result["errors"][peer.name] = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            )
            if args.debug:
                traceback.print_exc()
        print(f"[{label}] {peer.name}: {result['compile_s'].get(peer.name, 'failed')} s", file=sys.stderr)
    for point in points:
        x = make_input(point)
        entry = {"at": point, "latency": {}}
        reference = None
        for name, fn in peers.items():
            try:
                entry["latency"][name], out = measure(fn, x, args.repeat, args.budget)
                if reference is None:
                    reference = out
                else:
                    entry.setdefault("max_abs_diff_vs_first", {})[name] = float(
                        np.max(np.abs(out - reference))
                    )
            except Exception as exc:
                result["errors"][f"{name}@{point}"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        sf_ms = entry["latency"].get("shapeflow", {}).get("median_ms")
        for name, lat in entry["latency"].items():
            if name != "shapeflow" and sf_ms:
                entry[f"vs_{name}"] = round(lat["median_ms"] / sf_ms, 3)
        print(
            f"[{label}] {point}: "
            + ", ".join(f"{n} {v['median_ms']:.2f} ms" for n, v in entry["latency"].items()),
            file=sys.stderr,
        )
        result["points"].append(entry)
    return result


def geomean(values):
    values = [v for v in values if v]
    return round(math.exp(sum(math.log(v) for v in values) / len(values)), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="BERT at seq 1 and 17, ResNet-50 at batch 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20, help="calls timed per point (at most)")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds of timed calls per point (at most)"
    )
    parser.add_argument("--models", nargs="+", default=["bert", "resnet50"], choices=["bert", "resnet50"])
    parser.add_argument("--skip", nargs="*", default=[], help="peers to leave out (torch_eager, tvm, ...)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    rng = np.random.default_rng(0)
    results = []
    if "bert" in args.models:
        seqs = [1, 17] if args.quick else [1, 17, 128, 384]
        results.append(
            run_model(
                "bert",
                bert_model(),
                BERT_DIMS,
                [{"batch": 1, "seq": s} for s in seqs],
                lambda p: rng.standard_normal((p["batch"], p["seq"], BERT["hidden"])).astype("float32"),
                args,
                set(args.skip),
            )
        )
    if "resnet50" in args.models:
        batches = [1] if args.quick else [1, 8]
        results.append(
            run_model(
                "resnet50",
                resnet50_model(),
                RESNET_DIMS,
                [{"batch": b} for b in batches],
                lambda p: rng.standard_normal((p["batch"], 3, 224, 224)).astype("float32"),
                args,
                set(args.skip),
            )
        )
    peers = sorted({k[3:] for r in results for p in r["points"] for k in p if k.startswith("vs_")})
    summary = {
        f"geomean_vs_{peer}": geomean([p.get(f"vs_{peer}") for r in results for p in r["points"]])
        for peer in peers
    }
    report = {
        "benchmark": "onnx_models",
        "threads": args.threads,
        "quick": args.quick,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "results": results,
        "summary": summary,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
