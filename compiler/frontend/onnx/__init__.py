"""The ONNX frontend: `from_onnx(model, dims=None) -> IRModule`.

- importer.py: loading, opset handling, graph inputs and outputs, the node loop
- context.py: values by ONNX tensor name, values known at import time (symbolic shapes), dtype mapping
- registry.py: the converter table (one entry per ONNX op type and opset range)
- convert_*.py: the converters, by op family
- lowp.py, lowp_codec.py: float8/float4/int4/int2 as storage types (uint8 bits) and their exact codecs
- specialize.py: what shapeflow.compile does with a model whose shapes depend on graph inputs' values
  (one executable per value, LRU-cached)
"""

from shapeflow.frontend.onnx.importer import from_onnx
from shapeflow.frontend.onnx.registry import supported_ops
from shapeflow.frontend.onnx.specialize import SpecializingExecutable, compile_onnx

__all__ = ["SpecializingExecutable", "compile_onnx", "from_onnx", "supported_ops"]
