"""FP16 ONNX models, made with the onnx library alone: weights and compute in float16, with the
numerically sensitive ops and (by default) the model's inputs and outputs kept in float32.

Which nodes run in FP16: those whose op type is in :data:`FP16_OPS` (the ops with float16 kernels
in ONNX Runtime and TensorRT: convolutions, matmuls, element-wise arithmetic and activations,
pooling, BatchNorm, layout and indexing ops, Resize, GridSample) unless the op type is in
``keep_ops`` or the node is named in ``keep_nodes``. Every other node - an op outside that list, a
custom/plugin op, a node with a subgraph, a node a tensor of unknown type flows through - keeps
float32. :data:`DEFAULT_KEEP_OPS` keeps in float32 the ops where FP16's range (max 65504) or its
11-bit mantissa bites: Softmax/LogSoftmax, Exp, Log, Pow, the accumulating reductions (ReduceSum,
ReduceMean, ReduceProd, ReduceL2, ReduceSumSquare, ReduceLogSumExp, CumSum) and the normalisation
layers that compute a variance (LayerNormalization, InstanceNormalization, GroupNormalization).

A Cast is inserted wherever an FP16 tensor meets a float32 consumer or the reverse; float32
weights consumed only by FP16 nodes are stored as float16. With ``keep_io_fp32`` (the default) the
graph inputs and outputs stay float32, so the model is a drop-in replacement; without it float32
inputs and FP16-produced outputs become float16.

Why not a library converter (issue 12, item 13; ``benchmarks/fp16_compare.py``, figures in
``benchmarks/results/fp16_compare-cpu2.txt``, 17 models: opset 11/12 exports, Constant-node
weights, If subgraphs, dynamic H/W, the zoo's 12 BEV stage models, the onnx package's opset-9
IR-3 ResNet-50). Every model orinbench writes must pass the ONNX checker and load in ONNX Runtime
(:func:`~orinbench.model.load.verify_written_model`):

* this module: checker and load pass on 17 of 17;
* ``onnxruntime.transformers.float16`` (already installed with the ``ort`` extra): the checker
  fails on 17 of 17 (its input/output Casts are appended after their consumers, out of
  topological order; ONNX Runtime re-sorts on load, the ONNX checker and strict consumers do
  not);
* onnxconverter-common 1.16: loads in ONNX Runtime on 14 of 17 (type errors on the BEVFusion
  bbox head, the PETRv2 decoder and the ResNet-50).

Output agreement with FP32 is the same for all three within rounding (worst relative L2 error
3.7e-4 on the opset-11 conv net for this module and ONNX Runtime's; 7.2e-4 here vs 9.2e-4 for
ONNX Runtime's default on the PETRv2 decoder). Casts: ONNX Runtime's converter inserts fewer by
default (sample BEV model 4 vs 14) only because it keeps fewer ops in FP32; given this module's
keep list it inserts as many (14 vs 14, 29 vs 28 on the PETRv2 decoder). Where the libraries
win: weights inside If/Loop branches stay float32 here (27 % of the If model's weights converted,
100 % by both libraries); and on the ResNet-50, whose weights ConstantOfShape nodes make at run
time, this module casts each of them (241 Casts against ONNX Runtime's 31). So this converter
stays; a node with a subgraph keeps float32 by design. (The comparison found one bug here, fixed:
an IR < 4 model, which lists its initializers as graph inputs, failed type checking.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .._io import atomic_write_bytes
from ..errors import ModelError
from ..model.load import load_model, verify_written_model

F32 = TensorProto.FLOAT
F16 = TensorProto.FLOAT16

#: op types converted to FP16 (unless kept): ops with float16 kernels in ORT and TensorRT
FP16_OPS: frozenset[str] = frozenset(
    {
        "Abs", "Add", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Clip", "Concat",
        "Conv", "ConvTranspose", "CumSum", "DepthToSpace", "Div", "Einsum", "Elu", "Erf", "Exp",
        "Expand", "Flatten", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "GridSample", "GroupNormalization", "HardSigmoid",
        "HardSwish", "Identity", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log",
        "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mish", "Mul", "Neg", "PRelu",
        "Pad", "Pow", "Reciprocal", "ReduceL2", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
        "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize",
        "Selu", "Sigmoid", "Slice", "Softmax", "Softplus", "SpaceToDepth", "Split", "Sqrt",
        "Squeeze", "Sub", "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze", "Upsample", "Where",
    }
)  # fmt: skip
#: op types kept in float32 by default (see the module docstring for why)
DEFAULT_KEEP_OPS: tuple[str, ...] = (
    "Softmax",
    "LogSoftmax",
    "Exp",
    "Log",
    "Pow",
    "ReduceSum",
    "ReduceMean",
    "ReduceProd",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSumExp",
    "CumSum",
    "LayerNormalization",
    "InstanceNormalization",
    "GroupNormalization",
)
#: inputs that must stay float32 even on an FP16 node (Resize's roi/scales, Upsample's scales)
FP32_ONLY_INPUTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),
    "Upsample": frozenset({1}),
}


def _types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor that inference or the graph declares."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # inference is best effort; declared types still count
        inferred = model
    g = inferred.graph
    types: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    types[node.output[0]] = a.t.data_type
    return types


def _passes_strict_inference(model: onnx.ModelProto) -> bool:
    """Whether strict type/shape inference accepts the model (custom ops, for one, fail it)."""
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception:
        return False
    return True


def _outer_references(graph: onnx.GraphProto) -> set[str]:
    """Names a node's subgraphs read from the enclosing scope (implicit inputs)."""
    refs: set[str] = set()

    def walk(g: onnx.GraphProto) -> None:
        defined = {i.name for i in g.input} | {i.name for i in g.initializer}
        for n in g.node:
            defined.update(n.output)
        for n in g.node:
            refs.update(i for i in n.input if i and i not in defined)
            for a in n.attribute:
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    walk(sub)

    for node in graph.node:
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                walk(sub)
    return refs


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.HasField("g") or len(a.graphs) for a in node.attribute)


def _fp16_tensor(t: TensorProto) -> TensorProto:
    arr = numpy_helper.to_array(t)
    if arr.size and np.isfinite(arr).all() and np.abs(arr).max() > np.finfo(np.float16).max:
        arr = np.clip(arr, np.finfo(np.float16).min, np.finfo(np.float16).max)
    return numpy_helper.from_array(arr.astype(np.float16), t.name)


def convert_model_to_fp16(
    model: onnx.ModelProto,
    *,
    keep_io_fp32: bool = True,
    keep_ops: Iterable[str] = DEFAULT_KEEP_OPS,
    keep_nodes: Iterable[str] = (),
) -> onnx.ModelProto:
    """Return an FP16 copy of ``model`` (see the module docstring for the rules)."""
    strict = _passes_strict_inference(model)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    types = _types(model)
    keep_op_set, keep_node_set = set(keep_ops), set(keep_nodes)
    outer = _outer_references(g)

    def is_float(name: str) -> bool:
        return types.get(name) == F32

    fp16_nodes: set[int] = set()
    for idx, n in enumerate(g.node):
        if n.op_type not in FP16_OPS or n.domain not in ("", "ai.onnx"):
            continue
        if n.op_type in keep_op_set or n.name in keep_node_set or _has_subgraph(n):
            continue
        tensors = [t for t in [*n.input, *n.output] if t]
        if any(t not in types for t in tensors):
            continue  # a tensor of unknown type: FP16 could make the graph invalid
        if any(o in outer for o in n.output):
            continue  # a subgraph reads this output and expects float32
        if not any(is_float(t) for t in tensors):
            continue
        fp16_nodes.add(idx)

    graph_inputs = {i.name for i in g.input}
    graph_outputs = [o.name for o in g.output]
    inits = {i.name: i for i in g.initializer}
    constants = {
        n.output[0]: n
        for n in g.node
        if n.op_type == "Constant" and n.output and is_float(n.output[0])
    }
    # element type each float32 tensor is produced with after conversion
    produced: dict[str, int] = {}
    for name in graph_inputs:
        if is_float(name) and name not in inits:
            produced[name] = F32 if keep_io_fp32 or name in outer else F16
    for idx, n in enumerate(g.node):
        for o in n.output:
            if o and is_float(o) and n.op_type != "Constant":
                produced[o] = F16 if idx in fp16_nodes else F32

    # what each consumer slot wants
    wants: dict[str, list[int]] = {}
    for idx, n in enumerate(g.node):
        fp32_slots = FP32_ONLY_INPUTS.get(n.op_type, frozenset())
        for slot, t in enumerate(n.input):
            if t and is_float(t):
                want = F16 if idx in fp16_nodes and slot not in fp32_slots else F32
                wants.setdefault(t, []).append(want)
    for t in outer:
        if is_float(t):
            wants.setdefault(t, []).append(F32)

    # static tensors (weights, Constant nodes) take the type all their consumers want
    for name in [*inits, *constants]:
        if name not in types or not is_float(name):
            continue
        consumers = wants.get(name, [])
        as_fp16 = bool(consumers) and all(w == F16 for w in consumers) and name not in graph_outputs
        produced[name] = F16 if as_fp16 else F32
        if not as_fp16:
            continue
        if name in inits:
            init = inits[name]
            init.CopyFrom(_fp16_tensor(init))
            # IR < 4 lists every initializer as a graph input too: its declared type follows
            for vi in g.input:
                if vi.name == name and vi.type.HasField("tensor_type"):
                    vi.type.tensor_type.elem_type = F16
        else:
            for a in constants[name].attribute:
                if a.name == "value":
                    a.t.CopyFrom(_fp16_tensor(a.t))

    # graph outputs: with keep_io_fp32 an FP16 producer writes <name>_fp16, and a Cast restores
    # the float32 tensor under the output's own name
    renames: dict[str, str] = {}
    final_casts: list[onnx.NodeProto] = []
    existing = set(types) | {o for n in g.node for o in n.output}

    def fresh(base: str) -> str:
        name = base
        while name in existing:
            name += "_"
        existing.add(name)
        return name

    for out in g.output:
        if produced.get(out.name) != F16:
            continue
        if keep_io_fp32:
            inner = fresh(f"{out.name}_fp16")
            renames[out.name] = inner
            produced[inner] = F16
            final_casts.append(
                helper.make_node(
                    "Cast", [inner], [out.name], to=F32, name=fresh(f"{out.name}_to_fp32")
                )
            )
        else:
            out.type.tensor_type.elem_type = F16
    if not keep_io_fp32:
        for vi in g.input:
            if vi.name in produced and produced[vi.name] == F16:
                vi.type.tensor_type.elem_type = F16
    for n in g.node:
        for i, o in enumerate(n.output):
            if o in renames:
                n.output[i] = renames[o]
        for i, t in enumerate(n.input):
            if t in renames:
                n.input[i] = renames[t]

    # casts where a producer's type differs from what a consumer wants
    cast_of: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []
    for idx, n in enumerate(g.node):
        fp32_slots = FP32_ONLY_INPUTS.get(n.op_type, frozenset())
        for slot, t in enumerate(n.input):
            if not t or t not in produced:
                continue
            want = F16 if idx in fp16_nodes and slot not in fp32_slots else F32
            if produced[t] == want:
                continue
            key = (t, want)
            if key not in cast_of:
                suffix = "fp16" if want == F16 else "fp32"
                cast_out = fresh(f"{t}_to_{suffix}")
                cast_of[key] = cast_out
                new_nodes.append(
                    helper.make_node(
                        "Cast", [t], [cast_out], to=want, name=fresh(f"{cast_out}_cast")
                    )
                )
            n.input[slot] = cast_of[key]
        new_nodes.append(n)
    new_nodes.extend(final_casts)
    # each Cast sits just before its first consumer, after its producer: still topological
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    try:
        checked = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=strict)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(
            "the FP16 conversion produced a model that fails ONNX type checking",
            why=first[:300],
            fix="keep the op the message names in FP32 (keep_ops / keep_nodes) and report this",
        ) from exc
    return checked


def convert_to_fp16(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    *,
    keep_io_fp32: bool = True,
    keep_ops: Iterable[str] = DEFAULT_KEEP_OPS,
    keep_nodes: Iterable[str] = (),
) -> Path:
    """Write an FP16 copy of the ONNX model ``src_path`` to ``dst_path`` (atomically).

    See the module docstring for which nodes become FP16. The copy is checked (ONNX checker,
    ONNX Runtime load: :func:`~orinbench.model.load.verify_written_model`) before it is written;
    one that fails raises :class:`ModelError` and nothing is written. Returns ``dst_path``.
    """
    model = load_model(src_path)
    converted = convert_model_to_fp16(
        model, keep_io_fp32=keep_io_fp32, keep_ops=keep_ops, keep_nodes=keep_nodes
    )
    verify_written_model(
        converted,
        what=f"the FP16 model of {src_path}",
        fix="keep the op the message names in FP32 (keep_ops / keep_nodes) and report this",
    )
    return atomic_write_bytes(dst_path, converted.SerializeToString())
