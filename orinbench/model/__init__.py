"""ONNX models: loading with clear errors, inspection (IO, parameters, FLOPs), input data."""

from __future__ import annotations

from .feeds import load_feed_npz, random_feed
from .inspect import ModelInfo, inspect_model, tensor_spec
from .load import check_model, load_model, model_sha256
from .shapes import format_shape, parse_shape_arg, parse_shape_args, resolve_input_shapes

__all__ = [
    "ModelInfo",
    "check_model",
    "format_shape",
    "inspect_model",
    "load_feed_npz",
    "load_model",
    "model_sha256",
    "parse_shape_arg",
    "parse_shape_args",
    "random_feed",
    "resolve_input_shapes",
    "tensor_spec",
]
