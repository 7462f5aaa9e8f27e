"""What a result records about the ONNX model it measured: its precision and its content hash.

Every command that writes a result for an ONNX model (``bench``, ``soak``, ``run``, ``accuracy``)
takes both from here, so that the same model gets the same identity everywhere: the precision is
part of the baseline key and of the gate's comparability keys, and the hash is how history tells
two models apart.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnx

from .._io import sha256_file
from .load import _all_nodes, graph_tensors, load_model, model_sha256

#: ops that compute on integer-quantized tensors (the default domain's and ONNX Runtime's
#: com.microsoft contrib ops); any QLinear* op counts as well
_INT8_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "ConvInteger",
        "MatMulInteger",
        "DynamicQuantizeMatMul",
        "DynamicQuantizeLSTM",
        "MatMulIntegerToFloat",
        "QGemm",
        "QAttention",
        "QEmbedLayerNormalization",
    }
)

_FLOAT16 = onnx.TensorProto.FLOAT16
_FLOAT = onnx.TensorProto.FLOAT


def _is_quantized_op(op_type: str) -> bool:
    return op_type in _INT8_OPS or op_type.startswith("QLinear")


def _elements(tensor: onnx.TensorProto) -> int:
    # dims are in the proto even when the data is external, so nothing needs to be loaded
    return math.prod(int(d) for d in tensor.dims) if tensor.dims else 1


def model_precision(model: onnx.ModelProto) -> str:
    """``int8``, ``fp16`` or ``fp32``: the precision ONNX Runtime runs ``model`` in.

    ``int8``: any quantized op (Q/DQ, QLinear*, ConvInteger, MatMulInteger ...), in any subgraph.
    ``fp16``: most float weight elements (initializers and constants) are float16 (a converter
    keeps a few small tensors in float32: scales, Resize sizes); a model without float weights
    is ``fp16`` when its float inputs are all float16. Otherwise ``fp32``.
    """
    if any(_is_quantized_op(n.op_type) for n in _all_nodes(model.graph)):
        return "int8"
    half = full = 0
    for t in graph_tensors(model.graph):
        if t.data_type == _FLOAT16:
            half += _elements(t)
        elif t.data_type == _FLOAT:
            full += _elements(t)
    if half or full:
        return "fp16" if half > full else "fp32"
    initializers = {t.name for t in model.graph.initializer}
    floats = [
        i.type.tensor_type.elem_type
        for i in model.graph.input
        if i.name not in initializers and i.type.tensor_type.elem_type in (_FLOAT16, _FLOAT)
    ]
    return "fp16" if floats and all(t == _FLOAT16 for t in floats) else "fp32"


def guess_precision(path: str | os.PathLike[str]) -> str:
    """:func:`model_precision` of the ONNX model at ``path`` (external data is not loaded)."""
    return model_precision(load_model(path, load_external_data=False))


def artifact_sha256(path: str | os.PathLike[str]) -> str:
    """The ``model.sha256`` of a result: :func:`model_sha256` for an ONNX model (its external
    data files included), the file's SHA-256 for anything else (a TensorRT engine)."""
    if Path(path).suffix.lower() == ".onnx":
        return model_sha256(path)
    return sha256_file(path)
