"""A FLOP estimate from an ONNX graph whose tensor shapes are known.

Conventions (the numbers here are the constants in the code below):

* Multiply-accumulate ops count **FLOPs = 2 × MACs**; bias additions are not included.

  - ``Conv``: MACs = elements(Y) × C_in/group × prod(kernel) (grouped and depthwise included).
  - ``ConvTranspose``: MACs = elements(X) × C_out/group × prod(kernel).
  - ``MatMul`` (also ``MatMulInteger``, ``QLinearMatMul``): MACs = elements(Y) × K.
  - ``Gemm``: MACs = M × N × K.
  - ``Einsum``: MACs = product of the sizes of every index letter (two or more operands).
  - ``com.microsoft.Attention``: the fused Q/K/V projection (B·S·H_in·(H_q+H_k+H_v)) plus
    Q·Kᵀ (B·S·S·H_q) and attention·V (B·S·S·H_v). Attention written with MatMul/Softmax
    nodes is counted as those MatMuls.
  - ``com.microsoft.MultiHeadAttention``: Q·Kᵀ (B·S·L·D) plus attention·V (B·S·L·D_v).
* Cheap ops count a fixed number of FLOPs per element:
  elementwise arithmetic and activations (``Add``, ``Relu``, ``Sigmoid``, ``Exp``, ...) 1 per output
  element, transcendental functions included; ``Softmax``/``LogSoftmax`` 3 (exp, sum, divide);
  ``BatchNormalization`` 2 (scale, shift); ``LayerNormalization``/``InstanceNormalization``/
  ``GroupNormalization`` 5 (mean, variance, normalise, scale, shift); pooling 1 per kernel tap
  per output element; ``Global*Pool``, ``Reduce*`` and ``CumSum`` 1 per input element;
  ``ScatterElements``/``ScatterND`` with a reduction 1 per update element.
* Data movement and format conversion (``Reshape``, ``Transpose``, ``Gather``, ``Concat``,
  ``Cast``, ``QuantizeLinear``, nearest-neighbour ``Resize``, scatters without a reduction, ...)
  count 0 and are listed as such.
* Every other op type (linear ``Resize``, ``GridSample``, ``TopK``, ``LSTM``, ``If``, plugins,
  ...) is **not counted**
  and listed, and a node whose formula needs a shape that is unknown is listed with the reason:
  nothing is guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import helper

#: FLOPs per MAC
FLOPS_PER_MAC = 2

#: FLOPs per output element of elementwise ops and activations
_ELEMENTWISE = frozenset(
    {
        "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift",
        "Ceil", "Celu", "Clip", "Cos", "Cosh", "Div", "Elu", "Equal", "Erf", "Exp", "Floor",
        "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "IsInf", "IsNaN",
        "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min", "Mish", "Mod", "Mul",
        "Neg", "Not", "Or", "PRelu", "Pow", "Reciprocal", "Relu", "Round", "Selu", "Shrink",
        "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tan",
        "Tanh", "ThresholdedRelu", "Where", "Xor",
    }
)  # fmt: skip
_PER_ELEMENT: Mapping[str, int] = {
    **dict.fromkeys(_ELEMENTWISE, 1),
    "Softmax": 3,
    "LogSoftmax": 3,
    "BatchNormalization": 2,
    "LayerNormalization": 5,
    "InstanceNormalization": 5,
    "GroupNormalization": 5,
}
#: FLOPs per *input* element
_PER_INPUT_ELEMENT = frozenset(
    {
        "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceSum", "ReduceMean",
        "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
        "ReduceLogSum", "ReduceLogSumExp", "CumSum",
    }
)  # fmt: skip
_POOLING = frozenset({"MaxPool", "AveragePool", "LpPool"})

#: ops that move or reinterpret data without arithmetic: counted as 0 FLOPs
DATA_MOVEMENT_OPS = frozenset(
    {
        "ArgMax", "ArgMin", "Cast", "CastLike", "Compress", "Concat", "Constant",
        "ConstantOfShape", "DepthToSpace", "DequantizeLinear", "Dropout", "Expand", "EyeLike",
        "Flatten", "Gather", "GatherElements", "GatherND", "Identity", "NonZero", "OneHot", "Pad",
        "QuantizeLinear", "Range", "Reshape", "Shape", "Size", "Slice", "SpaceToDepth", "Split",
        "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze",
    }
)  # fmt: skip


@dataclass(frozen=True)
class UncountedNode:
    """A node that has a FLOP formula but could not be counted, and why."""

    name: str
    op_type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op_type": self.op_type, "reason": self.reason}


@dataclass(frozen=True)
class FlopsEstimate:
    """Total and per-op-type FLOPs, and what the total leaves out.

    ``uncounted_ops``: op types present in the graph that have no formula (their cost is unknown
    and not in the total). ``data_movement_ops``: op types present that count 0 by definition.
    ``unresolved``: nodes with a formula whose shapes were unknown; the total misses them too.
    """

    total: int
    by_op: Mapping[str, int]
    uncounted_ops: tuple[str, ...]
    data_movement_ops: tuple[str, ...]
    unresolved: tuple[UncountedNode, ...]

    @property
    def complete(self) -> bool:
        """True when every node was either counted or is data movement."""
        return not self.unresolved and not self.uncounted_ops

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_op": dict(self.by_op),
            "uncounted_ops": list(self.uncounted_ops),
            "data_movement_ops": list(self.data_movement_ops),
            "unresolved": [u.to_dict() for u in self.unresolved],
            "complete": self.complete,
        }


#: name -> shape with every dim known, or None (unknown rank or any unknown dim)
ShapeLookup = Callable[[str], "tuple[int, ...] | None"]


class _Unknown(Exception):
    """A shape the formula needs is not known."""


def op_key(node: onnx.NodeProto) -> str:
    """``Conv`` for the default ONNX domain, ``com.microsoft.Attention`` for others."""
    domain = node.domain
    return node.op_type if domain in ("", "ai.onnx") else f"{domain}.{node.op_type}"


def _numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


class _Node:
    def __init__(self, node: onnx.NodeProto, shape_of: ShapeLookup) -> None:
        self.node = node
        self._shape_of = shape_of
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _shape(self, name: str, role: str) -> tuple[int, ...]:
        if not name:
            raise _Unknown(f"{role} is absent")
        shape = self._shape_of(name)
        if shape is None:
            raise _Unknown(f"shape of {role} {name!r} is unknown")
        return shape

    def input(self, i: int) -> tuple[int, ...]:
        if i >= len(self.node.input):
            raise _Unknown(f"input {i} is absent")
        return self._shape(self.node.input[i], f"input {i}")

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def output(self, i: int = 0) -> tuple[int, ...]:
        return self._shape(self.node.output[i], f"output {i}")


def _conv(n: _Node, w_index: int = 1) -> int:
    w = n.input(w_index)
    return _numel(n.output()) * _numel(w[1:])


def _conv_transpose(n: _Node) -> int:
    return _numel(n.input(0)) * _numel(n.input(1)[1:])


def _matmul(n: _Node, a_index: int = 0) -> int:
    a = n.input(a_index)
    return _numel(n.output()) * (a[-1] if a else 1)


def _gemm(n: _Node) -> int:
    a = n.input(0)
    if len(a) != 2:
        raise _Unknown("Gemm input A is not 2-D")
    k = a[0] if n.attrs.get("transA", 0) else a[1]
    return _numel(n.output()) * k


def _einsum(n: _Node) -> int:
    eq = n.attrs.get("equation", b"")
    eq = eq.decode() if isinstance(eq, bytes) else str(eq)
    lhs = eq.replace(" ", "").split("->")[0]
    terms = lhs.split(",")
    if "..." in lhs:
        raise _Unknown("Einsum with an ellipsis is not counted")
    sizes: dict[str, int] = {}
    for i, term in enumerate(terms):
        shape = n.input(i)
        if len(shape) != len(term):
            raise _Unknown("Einsum equation does not match input ranks")
        for letter, size in zip(term, shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    product = _numel(sizes.values())
    # one operand is a pure reduction/transpose: one add per element, not a MAC
    return product if len(terms) >= 2 else 0


def _ms_attention(n: _Node) -> int:
    x = n.input(0)
    w = n.input(1)
    if len(x) != 3 or len(w) != 2:
        raise _Unknown("Attention input is not [batch, seq, hidden]")
    b, s, h_in = x
    qkv = n.attrs.get("qkv_hidden_sizes")
    hq, hk, hv = (int(v) for v in qkv) if qkv else (w[1] // 3,) * 3
    if n.has_input(4):  # past state: total sequence length unknown from the graph alone
        raise _Unknown("Attention with a past state is not counted")
    return b * s * h_in * (hq + hk + hv) + b * s * s * hq + b * s * s * hv


def _ms_mha(n: _Node) -> int:
    q = n.input(0)
    if len(q) != 3 or not n.has_input(1):
        raise _Unknown("MultiHeadAttention with packed inputs is not counted")
    k = n.input(1)
    if len(k) == 3:
        length = k[1]
    elif len(k) == 4:
        length = k[2]
    else:
        raise _Unknown("MultiHeadAttention key layout not recognised")
    b, s, d = q
    dv = d
    if n.has_input(2):
        v = n.input(2)
        dv = v[-1] * (v[1] if len(v) == 4 else 1)
    return b * s * length * d + b * s * length * dv


#: op key -> function returning MACs
_MAC_OPS: Mapping[str, Callable[[_Node], int]] = {
    "Conv": _conv,
    "ConvInteger": _conv,
    "QLinearConv": lambda n: _conv(n, w_index=3),
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "MatMulInteger": _matmul,
    "QLinearMatMul": _matmul,
    "Gemm": _gemm,
    "Einsum": _einsum,
    "com.microsoft.Attention": _ms_attention,
    "com.microsoft.MultiHeadAttention": _ms_mha,
}


def _pool(n: _Node) -> int:
    kernel = n.attrs.get("kernel_shape")
    if not kernel:
        raise _Unknown("pooling without kernel_shape")
    return _numel(n.output()) * _numel(kernel)


def _str_attr(n: _Node, name: str, default: str) -> str:
    value = n.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_movement(key: str, n: _Node) -> bool:
    if key in DATA_MOVEMENT_OPS:
        return True
    if key in ("Resize", "Upsample"):
        return _str_attr(n, "mode", "nearest") == "nearest"
    if key in ("ScatterElements", "ScatterND"):
        return _str_attr(n, "reduction", "none") == "none"
    return False


def _node_flops(key: str, n: _Node) -> int | None:
    """FLOPs of one node; None when the op type has no formula."""
    if key in _MAC_OPS:
        return FLOPS_PER_MAC * _MAC_OPS[key](n)
    if key in _PER_ELEMENT:
        return _PER_ELEMENT[key] * _numel(n.output())
    if key in _PER_INPUT_ELEMENT:
        return _numel(n.input(0))
    if key in _POOLING:
        return _pool(n)
    if key in ("ScatterElements", "ScatterND"):
        return _numel(n.input(2))  # one add (or mul, max, min) per update element
    return None


def count_flops(nodes: Sequence[onnx.NodeProto], shape_of: ShapeLookup) -> FlopsEstimate:
    """Count the FLOPs of ``nodes`` given ``shape_of`` (see the module docstring)."""
    by_op: dict[str, int] = {}
    uncounted: set[str] = set()
    movement: set[str] = set()
    unresolved: list[UncountedNode] = []
    for node in nodes:
        key = op_key(node)
        n = _Node(node, shape_of)
        if _is_movement(key, n):
            movement.add(key)
            continue
        try:
            flops = _node_flops(key, n)
        except _Unknown as exc:
            unresolved.append(UncountedNode(node.name or "(unnamed)", key, str(exc)))
            continue
        if flops is None:
            uncounted.add(key)
        else:
            by_op[key] = by_op.get(key, 0) + flops
    ordered = dict(sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0])))
    return FlopsEstimate(
        total=sum(ordered.values()),
        by_op=ordered,
        uncounted_ops=tuple(sorted(uncounted)),
        data_movement_ops=tuple(sorted(movement)),
        unresolved=tuple(unresolved),
    )
