"""Frontends: models from other frameworks to shapeflow's graph IR. `from_onnx` imports ONNX models."""

from shapeflow.frontend.onnx import from_onnx, supported_ops

__all__ = ["from_onnx", "supported_ops"]
