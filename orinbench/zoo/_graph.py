"""A small ONNX graph builder that tracks static shapes and makes deterministic weights.

Every zoo model is written with it: each layer helper computes its output shape itself, so that
the builders can size the next layer without running shape inference, and every weight comes from
the builder's seeded generator in call order, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import __version__

#: opset of every zoo model: TensorRT 8.6 (JetPack 5) parses up to opset 17, and 17 already has
#: LayerNormalization, GridSample and ScatterElements with reduction
OPSET = 17
#: IR version matching opset 17 (onnx 1.12); newer IR versions are refused by older parsers
IR_VERSION = 8

Shape = tuple[int, ...]


class GraphBuilder:
    """Accumulates nodes, initializers and static shapes for one ONNX graph."""

    def __init__(self, name: str, *, rng: np.random.Generator, doc: str = "") -> None:
        self.name = name
        self.rng = rng
        self.doc = doc
        self.shapes: dict[str, Shape] = {}
        self._nodes: list[onnx.NodeProto] = []
        self._inits: list[onnx.TensorProto] = []
        self._inputs: list[onnx.ValueInfoProto] = []
        self._outputs: list[onnx.ValueInfoProto] = []
        self._scope: list[str] = []
        self._counts: dict[str, int] = {}
        self._consts: dict[tuple[str, bytes, Shape], str] = {}

    # -- naming -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix names made inside the block with ``name.`` (readable graphs in Netron)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def fresh(self, base: str) -> str:
        full = ".".join([*self._scope, base])
        n = self._counts.get(full, 0)
        self._counts[full] = n + 1
        return full if n == 0 else f"{full}_{n}"

    # -- graph IO -----------------------------------------------------------------------------
    def input(self, name: str, shape: Sequence[int], dtype: int = TensorProto.FLOAT) -> str:
        self._inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        self.shapes[name] = tuple(shape)
        return name

    def output(self, tensor: str, name: str | None = None, dtype: int = TensorProto.FLOAT) -> str:
        """Mark ``tensor`` as a graph output, renaming it to ``name`` through an Identity."""
        if name is not None and name != tensor:
            tensor = self.op("Identity", [tensor], self.shapes[tensor], out=name)
        self._outputs.append(
            helper.make_tensor_value_info(tensor, dtype, list(self.shapes[tensor]))
        )
        return tensor

    # -- constants and weights ----------------------------------------------------------------
    def const(
        self, value: np.ndarray | np.generic | Sequence[int] | Sequence[float], base: str = "c"
    ) -> str:
        """An initializer; identical small constants are shared."""
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        key = (arr.dtype.str, arr.tobytes(), arr.shape) if arr.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(base)
        self._inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        self.shapes[name] = tuple(arr.shape)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(values, dtype=np.int64), "shape")

    def weight(self, shape: Sequence[int], *, std: float, base: str = "weight") -> str:
        arr = self.rng.standard_normal(tuple(shape), dtype=np.float32)
        arr *= np.float32(std)
        return self.const(arr, base)

    def bias(self, n: int, *, std: float = 0.01, base: str = "bias") -> str:
        return self.weight((n,), std=std, base=base)

    # -- nodes --------------------------------------------------------------------------------
    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        shape: Sequence[int],
        *,
        out: str | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> str:
        """Add a single-output node whose output has ``shape``; returns the output name."""
        return self.op_multi(
            op_type, inputs, [shape], outs=[out] if out else None, domain=domain, **attrs
        )[0]

    def op_multi(
        self,
        op_type: str,
        inputs: Sequence[str],
        shapes: Sequence[Sequence[int]],
        *,
        outs: Sequence[str] | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> list[str]:
        node_name = self.fresh(op_type.lower())
        names = (
            list(outs)
            if outs
            else (
                [node_name]
                if len(shapes) == 1
                else [f"{node_name}:{i}" for i in range(len(shapes))]
            )
        )
        self._nodes.append(
            helper.make_node(op_type, list(inputs), names, name=node_name, domain=domain, **attrs)
        )
        for n, s in zip(names, shapes, strict=True):
            self.shapes[n] = tuple(int(d) for d in s)
        return names

    # -- result -------------------------------------------------------------------------------
    def build(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self._nodes,
            self.name,
            self._inputs,
            self._outputs,
            initializer=self._inits,
            doc_string=self.doc,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="orinbench.zoo",
            producer_version=__version__,
        )
        model.ir_version = IR_VERSION
        return model

    def param_count(self) -> int:
        return sum(math.prod(t.dims) for t in self._inits if t.data_type == TensorProto.FLOAT)


def stage_builder(model: str, stage: str, *, seed: int, index: int) -> GraphBuilder:
    """The builder of stage ``index`` of a staged model: its own generator, derived from the seed,
    so that one stage's weights do not depend on how many numbers the others drew."""
    return GraphBuilder(
        f"{model}.{stage}",
        rng=np.random.default_rng([seed, index]),
        doc=f"orinbench zoo model {model}, stage {stage}, seed {seed}",
    )
