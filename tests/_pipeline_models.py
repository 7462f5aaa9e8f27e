"""Tiny ONNX stage models and recipes for the pipeline tests (built with onnx.helper)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Shape = Sequence[int | str]


def unary(
    inp: str,
    out: str,
    *,
    op: str = "Mul",
    const: float = 2.0,
    shape: Shape = (1, 4),
    out_shape: Shape | None = None,
    dtype: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """``out = inp <op> const`` (Mul, Add, Sub), elementwise."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    c = numpy_helper.from_array(np.array(const, dtype=np_dtype), "c")
    graph = helper.make_graph(
        [helper.make_node(op, [inp, "c"], [out])],
        f"{inp}_{op}",
        [helper.make_tensor_value_info(inp, dtype, list(shape))],
        [helper.make_tensor_value_info(out, dtype, list(out_shape or shape))],
        initializer=[c],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def binary(a: str, b: str, out: str, *, op: str = "Add", shape: Shape = (1, 4)) -> onnx.ModelProto:
    """``out = a <op> b``."""
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, [a, b], [out])],
        f"{a}_{op}_{b}",
        [
            helper.make_tensor_value_info(a, f, list(shape)),
            helper.make_tensor_value_info(b, f, list(shape)),
        ],
        [helper.make_tensor_value_info(out, f, list(shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def matmul(inp: str, out: str, *, n: int = 64, seed: int = 0) -> onnx.ModelProto:
    """``out = inp @ W`` with inp [1, n], W [n, n]: 2 n^2 FLOPs, for roofline checks."""
    f = TensorProto.FLOAT
    w = numpy_helper.from_array(
        np.random.default_rng(seed).standard_normal((n, n)).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", [inp, "w"], [out])],
        "mm",
        [helper.make_tensor_value_info(inp, f, [1, n])],
        [helper.make_tensor_value_info(out, f, [1, n])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def chain_dir(tmp: Path) -> Path:
    """Three stages in ``tmp``: a.onnx x->y (x*2), b.onnx y->z (y+1), c.onnx z,x->w (z+x)."""
    save(unary("x", "y", op="Mul", const=2.0), tmp / "a.onnx")
    save(unary("y", "z", op="Add", const=1.0), tmp / "b.onnx")
    save(binary("z", "x", "w"), tmp / "c.onnx")
    return tmp


CHAIN_RECIPE = """
[pipeline]
name = "chain"

[[stages]]
name = "a"
onnx = "a.onnx"

[[stages]]
name = "b"
onnx = "b.onnx"

[[stages]]
name = "c"
onnx = "c.onnx"
"""


def write(tmp: Path, text: str, name: str = "recipe.toml") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p
