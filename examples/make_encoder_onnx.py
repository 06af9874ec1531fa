"""Write the embedded example model, shapeflow/data/encoder.onnx (compiler/data/ in the source tree).

A small transformer encoder (hidden 64, 4 heads, FFN 256, 2 post-norm layers with LayerNormalization, GELU
through Erf, Softmax attention) over float32 hidden states x (batch, seq, 64), with symbolic dims "batch"
and "seq". The weights come from a fixed seed, so running this again writes the same bytes:

    python examples/make_encoder_onnx.py            # (re)write the shipped file
    python examples/make_encoder_onnx.py --check    # also compare with onnxruntime, when it is installed
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx

from shapeflow.examples_embedded import ENCODER_CONFIG, transformer_encoder_onnx

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "compiler" / "data" / "encoder.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default {DEFAULT_OUT})"
    )
    parser.add_argument("--check", action="store_true", help="run the model in onnxruntime at a few sizes")
    args = parser.parse_args()
    model = transformer_encoder_onnx(**ENCODER_CONFIG)
    onnx.checker.check_model(model, full_check=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, {len(model.graph.node)} nodes)")
    if args.check:
        import onnxruntime as ort

        session = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
        for batch, seq in [(1, 1), (2, 17), (3, 128)]:
            x = np.random.default_rng(0).standard_normal((batch, seq, ENCODER_CONFIG["hidden"])).astype("f4")
            (y,) = session.run(None, {"x": x})
            print(
                f"  onnxruntime batch={batch} seq={seq}: y {y.shape} mean {y.mean():+.4f} std {y.std():.4f}"
            )


if __name__ == "__main__":
    main()
