"""The input and output specs of an ONNX model, read with the onnx library alone (no runtime).

Calibration data is checked against these before any work starts, so that a wrong name, shape or
dtype is reported in one line instead of deep inside ONNX Runtime or TensorRT.
"""

from __future__ import annotations

import os

import onnx

from ..model.inspect import tensor_spec
from ..model.load import load_model
from ..model.shapes import UNKNOWN_RANK
from ..results.schema import TensorSpec


def io_specs(model: onnx.ModelProto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of ``model``. Graph inputs that are initializers are not inputs."""
    inits = {i.name for i in model.graph.initializer}
    inputs = tuple(tensor_spec(vi) for vi in model.graph.input if vi.name not in inits)
    outputs = tuple(tensor_spec(vi) for vi in model.graph.output)
    return inputs, outputs


def model_io_specs(
    path: str | os.PathLike[str],
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of the ONNX file at ``path``; weights are not loaded."""
    return io_specs(load_model(path, load_external_data=False))


def rank_known(spec: TensorSpec) -> bool:
    return spec.shape != (UNKNOWN_RANK,)


def shape_text(shape: tuple[int | str, ...] | tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"
