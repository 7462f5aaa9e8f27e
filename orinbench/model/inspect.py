"""What is in an ONNX model: IO specs, opset, parameter count, op census and a FLOP estimate.

Only ``onnx`` and ``numpy`` are used, so inspection works on any machine. Shapes come from ONNX
shape inference run on a weight-free copy of the graph, after the user's ``shapes`` have been
substituted for the inputs' dynamic dims, so dynamic models can be counted too; see
:mod:`orinbench.model.flops` for the FLOP conventions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ..results.schema import TensorSpec
from .feeds import FLOAT_SCALE, INT_HIGH, load_feed_npz, random_feed
from .flops import FlopsEstimate, UncountedNode, count_flops, op_key
from .load import load_model
from .shapes import (
    UNKNOWN_DIM,
    UNKNOWN_RANK,
    format_shape,
    parse_shape_arg,
    parse_shape_args,
    resolve_input_shapes,
    resolve_partial,
)

__all__ = [
    "FLOAT_SCALE",
    "INT_HIGH",
    "FlopsEstimate",
    "ModelInfo",
    "UncountedNode",
    "dtype_name",
    "format_shape",
    "inspect_model",
    "load_feed_npz",
    "parse_shape_arg",
    "parse_shape_args",
    "random_feed",
    "resolve_input_shapes",
    "tensor_spec",
]

#: initializers bigger than this are left out of the copy given to shape inference: they are
#: weights whose values inference never needs, and copying them would cost time and memory
_SMALL_INITIALIZER = 4096


@dataclass(frozen=True)
class ModelInfo:
    """The result of :func:`inspect_model`.

    ``param_count``/``param_bytes`` cover every initializer and Constant node (index tables
    included); ``weight_count`` only the floating-point ones, which is what papers report as
    "parameters". Weights inside subgraphs count: an If adds its largest branch, a Loop/Scan its
    body once; ``branches`` lists every subgraph's own figures. ``shapes`` holds the concrete
    input shapes the FLOP estimate used. ``flops_known`` is False when the FLOP total misses
    nodes whose shapes depend on dynamic dims that no ``--shape`` fixed: the total is then a
    partial count, not the model's FLOPs.
    """

    path: str | None
    graph_name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    opsets: Mapping[str, int]
    ir_version: int
    producer: str
    node_count: int
    param_count: int
    param_bytes: int
    weight_count: int
    op_census: Mapping[str, int]
    flops: FlopsEstimate
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    branches: tuple[BranchParams, ...] = ()
    dynamic_inputs: tuple[str, ...] = ()

    @property
    def flops_known(self) -> bool:
        return not (self.dynamic_inputs and self.flops.unresolved)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "graph_name": self.graph_name,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "opset": self.opset,
            "opsets": dict(self.opsets),
            "ir_version": self.ir_version,
            "producer": self.producer,
            "node_count": self.node_count,
            "param_count": self.param_count,
            "param_bytes": self.param_bytes,
            "weight_count": self.weight_count,
            "op_census": dict(self.op_census),
            "flops": self.flops.to_dict(),
            "flops_known": self.flops_known,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "branches": [b.to_dict() for b in self.branches],
            "notes": list(self.notes),
        }


def dtype_name(elem_type: int) -> str:
    """ONNX element type -> numpy dtype name (``"float32"``, ``"int64"``, ``"bool"``, ...)."""
    if elem_type == onnx.TensorProto.UNDEFINED:
        return UNKNOWN_DIM
    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name)
    except (KeyError, TypeError, ValueError):
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()


def _dims(shape_proto: onnx.TensorShapeProto) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for d in shape_proto.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(UNKNOWN_DIM)
    return tuple(out)


def tensor_spec(value_info: onnx.ValueInfoProto) -> TensorSpec:
    """A graph input/output as a TensorSpec; an unknown rank is the shape ``("...",)``."""
    t = value_info.type
    if t.HasField("tensor_type"):
        tt = t.tensor_type
        shape = _dims(tt.shape) if tt.HasField("shape") else (UNKNOWN_RANK,)
        return TensorSpec(value_info.name, dtype_name(tt.elem_type), shape)
    kind = t.WhichOneof("value") or "unknown"
    return TensorSpec(value_info.name, kind.replace("_type", ""), (UNKNOWN_RANK,))


def _graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: IR < 4 models also list every initializer as an input."""
    inits = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits]


def _tensor_size(t: onnx.TensorProto) -> tuple[int, int, bool]:
    """(elements, bytes, is floating point) of an initializer or Constant value."""
    count = int(np.prod(t.dims, dtype=np.int64)) if t.dims else 1
    if t.data_type == onnx.TensorProto.STRING:
        return count, sum(len(s) for s in t.string_data), False
    try:
        dt = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
        itemsize, is_float = dt.itemsize, dt.kind in "fc" or dt.name == "bfloat16"
    except (KeyError, TypeError, ValueError):
        itemsize, is_float = 1, False  # sub-byte and exotic types: a lower bound
    if t.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        return count, (count + 1) // 2, False
    return count, count * itemsize, bool(is_float)


def _constant_size(node: onnx.NodeProto) -> tuple[int, int, bool]:
    for attr in node.attribute:
        if attr.name in ("value", "sparse_value"):
            t = attr.t if attr.name == "value" else attr.sparse_tensor.values
            return _tensor_size(t)
        if attr.name == "value_float":
            return 1, 4, True
        if attr.name == "value_floats":
            return len(attr.floats), 4 * len(attr.floats), True
        if attr.name == "value_int":
            return 1, 8, False
        if attr.name == "value_ints":
            return len(attr.ints), 8 * len(attr.ints), False
    return 0, 0, False


@dataclass(frozen=True)
class BranchParams:
    """Parameters of one subgraph of a node (``if_1.then_branch``), its own subgraphs included."""

    node: str
    op_type: str
    branch: str
    param_count: int
    param_bytes: int
    weight_count: int
    counted: bool  # False for an If branch smaller than its sibling: not in the totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "op_type": self.op_type,
            "branch": self.branch,
            "param_count": self.param_count,
            "param_bytes": self.param_bytes,
            "weight_count": self.weight_count,
            "counted": self.counted,
        }


def _param_totals(
    graph: onnx.GraphProto, branches: list[BranchParams] | None = None, prefix: str = ""
) -> tuple[int, int, int]:
    """(elements, bytes, floating-point elements) of ``graph``'s weights, subgraphs included.

    An If runs one branch: it adds its largest branch (by weights), and each branch is listed in
    ``branches``. A Loop/Scan body holds its weights once, however often it runs.
    """
    count = nbytes = weights = 0
    sizes = [_tensor_size(t) for t in graph.initializer]
    sizes += [_tensor_size(s.values) for s in graph.sparse_initializer]
    sizes += [_constant_size(n) for n in graph.node if n.op_type == "Constant" and not n.domain]
    for c, b, is_float in sizes:
        count += c
        nbytes += b
        weights += c if is_float else 0
    for i, node in enumerate(graph.node):
        subs = [
            (a.name if a.HasField("g") else f"{a.name}[{j}]", g)
            for a in node.attribute
            for j, g in ([(0, a.g)] if a.HasField("g") else list(enumerate(a.graphs)))
        ]
        if not subs:
            continue
        label = prefix + (node.name or f"{node.op_type}#{i}")
        found = []
        for branch, sub in subs:
            inner: list[BranchParams] = []
            c, b, w = _param_totals(sub, inner, prefix=f"{label}.{branch}/")
            found.append((branch, c, b, w, inner))
        # an If runs one of its branches; other ops (Loop, Scan) run all their bodies
        alternatives = node.op_type == "If" and not node.domain
        chosen = max(found, key=lambda f: (f[3], f[1])) if alternatives else None
        for f in found:
            branch, c, b, w, inner = f
            take = not alternatives or f is chosen
            if branches is not None:
                branches.append(BranchParams(label, node.op_type, branch, c, b, w, take))
                branches.extend(inner if take else [replace(x, counted=False) for x in inner])
            if take:
                count += c
                nbytes += b
                weights += w
    return count, nbytes, weights


def _set_dims(vi: onnx.ValueInfoProto, dims: Sequence[int | str]) -> onnx.ValueInfoProto:
    elem = vi.type.tensor_type.elem_type
    shape = [d if isinstance(d, int) else (None if d == UNKNOWN_DIM else d) for d in dims]
    return helper.make_tensor_value_info(vi.name, elem, shape)


def _light_model(
    model: onnx.ModelProto, input_dims: Mapping[str, Sequence[int | str]], keep_value_info: bool
) -> onnx.ModelProto:
    """A copy of ``model`` for shape inference: big initializers become typed graph inputs."""
    g = model.graph
    inputs: list[onnx.ValueInfoProto] = []
    for vi in _graph_inputs(g):
        dims = input_dims.get(vi.name)
        has_tensor = vi.type.HasField("tensor_type")
        inputs.append(_set_dims(vi, dims) if dims is not None and has_tensor else vi)
    small: list[onnx.TensorProto] = []
    for t in g.initializer:
        n_elem = int(np.prod(t.dims, dtype=np.int64)) if t.dims else 1
        if n_elem <= _SMALL_INITIALIZER and t.data_location != onnx.TensorProto.EXTERNAL:
            small.append(t)
        else:
            inputs.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    graph = helper.make_graph(
        list(g.node),
        g.name or "graph",
        inputs,
        list(g.output),
        initializer=small,
        value_info=list(g.value_info) if keep_value_info else [],
    )
    light = helper.make_model(graph, opset_imports=list(model.opset_import))
    light.ir_version = model.ir_version
    light.functions.extend(model.functions)
    return light


def _known_shapes(
    model: onnx.ModelProto, light: onnx.ModelProto
) -> dict[str, tuple[int | str, ...] | None]:
    shapes: dict[str, tuple[int | str, ...] | None] = {}
    g = light.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            shapes[vi.name] = _dims(tt.shape)
    for t in model.graph.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    return shapes


def inspect_model(
    model_or_path: onnx.ModelProto | str | os.PathLike[str],
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> ModelInfo:
    """Inspect a model given as a path or a loaded ``ModelProto``.

    ``shapes`` maps input names to concrete shapes for their dynamic dims (``--shape``); an input
    left out keeps its symbolic dims, and whatever depends on them is reported as unresolved
    rather than guessed. A bad override (unknown input, wrong rank, a static dim changed) raises
    :class:`~orinbench.errors.ShapeError`.
    """
    if isinstance(model_or_path, onnx.ModelProto):
        model, path = model_or_path, None
    else:
        model = load_model(model_or_path, load_external_data=False)
        path = str(model_or_path)
    g = model.graph
    inputs = tuple(tensor_spec(vi) for vi in _graph_inputs(g))
    outputs = tuple(tensor_spec(vi) for vi in g.output)
    partial = resolve_partial(inputs, shapes or {})
    declared = {spec.name: spec.shape for spec in inputs}
    changed = {name: dims for name, dims in partial.items() if dims != declared[name]}
    notes: list[str] = []
    # value_info written for other input shapes would contradict the new ones: drop it then
    light = _light_model(model, changed, keep_value_info=not changed)
    try:
        light = onnx.shape_inference.infer_shapes(
            light, check_type=False, strict_mode=False, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        notes.append(f"shape inference failed ({first}); only declared shapes were used")
    known = _known_shapes(model, light)

    def concrete(name: str) -> tuple[int, ...] | None:
        dims = known.get(name)
        if dims is None or not all(isinstance(d, int) and d >= 0 for d in dims):
            return None
        return tuple(int(d) for d in dims)

    flops = count_flops(list(g.node), concrete)
    census: dict[str, int] = {}
    for node in g.node:
        census[op_key(node)] = census.get(op_key(node), 0) + 1
    branches: list[BranchParams] = []
    count, nbytes, weights = _param_totals(g, branches)
    if branches:
        notes.append(
            "params include subgraph weights: each If counts its largest branch, a Loop/Scan "
            "body once; FLOPs and the op census cover the main graph only"
        )
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
    used = {
        name: tuple(int(d) for d in dims)
        for name, dims in partial.items()
        if all(isinstance(d, int) for d in dims)
    }
    return ModelInfo(
        path=path,
        graph_name=g.name,
        inputs=inputs,
        outputs=outputs,
        opset=opsets.get("ai.onnx", 0),
        opsets=opsets,
        ir_version=int(model.ir_version),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        node_count=len(g.node),
        param_count=count,
        param_bytes=nbytes,
        weight_count=weights,
        op_census=dict(sorted(census.items(), key=lambda kv: (-kv[1], kv[0]))),
        flops=flops,
        shapes=used,
        notes=tuple(notes),
        branches=tuple(branches),
        dynamic_inputs=tuple(
            spec.name
            for spec in inputs
            if not all(isinstance(d, int) and d >= 0 for d in partial.get(spec.name, spec.shape))
        ),
    )
