"""orinbench's FP16 converter against ONNX Runtime's and onnxconverter-common's (issue 12, item 13).

For each model class orinbench meets (opset 11/12 exports, weights in Constant nodes, If
subgraphs, dynamic H/W, the zoo's BEV models, a real exported network from the onnx package's
test data) and each converter, it reports:

* whether the converter returned a model at all;
* ``check``: the ONNX checker accepts it; ``load``: ONNX Runtime (CPU) opens it;
* ``casts``: Cast nodes in the converted model (all graphs), ``fp16w``: the share of float
  weight elements stored as float16;
* ``rel_l2`` and ``cos``: agreement of the outputs with FP32 on one seeded random input
  (worst output): relative L2 error and cosine similarity.

Every converter keeps the model's inputs and outputs float32 (a drop-in replacement), the way
orinbench uses it. ONNX Runtime's converter runs with its default op block list, and once more
with orinbench's FP32 list added (``onnxruntime+keep-list``: Casts compared like for like);
onnxconverter-common with its default list. The light ResNet-50 of the onnx package's test data
computes its weights with ConstantOfShape, so its outputs agree trivially; it is there for
loading and Casts.

    python benchmarks/fp16_compare.py            # onnxconverter-common is used when importable

onnxconverter-common is not a dependency of orinbench; to include it:
``pip install --no-deps --target /tmp/occ onnxconverter-common`` and ``PYTHONPATH=/tmp/occ``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from orinbench.model.inspect import random_feed, resolve_input_shapes, tensor_spec
from orinbench.precision.fp16 import convert_model_to_fp16
from orinbench.zoo.registry import build_model

Converter = Callable[[onnx.ModelProto], onnx.ModelProto]
RNG = np.random.default_rng(0)


def _w(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    g = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 6 if opset < 13 else 8
    onnx.checker.check_model(m)
    return m


def conv_net(opset: int) -> onnx.ModelProto:
    """Conv-BN-Relu-Conv-Resize and a Gemm/Softmax head, at an old opset."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    hm = helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 4, 64, 64])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 5])
    inits = [
        _w("w1", 8, 3, 3, 3), _w("b1", 8),
        numpy_helper.from_array(RNG.uniform(0.5, 1.5, 8).astype(np.float32), "s"),
        _w("bb", 8), _w("m", 8, scale=0.1),
        numpy_helper.from_array(RNG.uniform(0.5, 1.5, 8).astype(np.float32), "v"),
        _w("w2", 4, 8, 3, 3), _w("b2", 4), _w("wf", 8, 5), _w("bf", 5),
        numpy_helper.from_array(np.array([], np.float32), "roi"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c2", "roi", "scales"], ["heatmap"], mode="nearest"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    return _model(nodes, [x], [hm, probs], inits, opset=opset)


def constant_weights() -> onnx.ModelProto:
    """Weights held in Constant nodes (as some exporters and constant folding leave them)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])
    nodes = [
        helper.make_node("Constant", [], ["w1"], value=_w("w1", 8, 3, 3, 3)),
        helper.make_node("Constant", [], ["b1"], value=_w("b1", 8)),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["k"], value=_w("k", 1, 8, 1, 1)),
        helper.make_node("Mul", ["c1", "k"], ["m1"]),
        helper.make_node("Sigmoid", ["m1"], ["y"]),
    ]
    return _model(nodes, [x], [y], opset=12)


def if_subgraphs() -> onnx.ModelProto:
    """A Conv outside, and a Conv with its weights inside each branch of an If."""

    def branch(name: str) -> onnx.GraphProto:
        n = helper.make_node("Conv", ["r", f"w_{name}"], [f"y_{name}"], pads=[1, 1, 1, 1])
        out = helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [1, 4, 32, 32])
        return helper.make_graph([n], name, [], [out], initializer=[_w(f"w_{name}", 4, 8, 3, 3)])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32, 32])
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["mean"], keepdims=0),
        helper.make_node("Greater", ["mean", "zero"], ["cond"]),
        helper.make_node(
            "If", ["cond"], ["y"], then_branch=branch("then"), else_branch=branch("else")
        ),
    ]
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    return _model(nodes, [x], [y], [_w("w0", 8, 3, 3, 3), zero], opset=17)


def dynamic_hw() -> onnx.ModelProto:
    m = conv_net(17)
    m = onnx.ModelProto.FromString(m.SerializeToString())
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    for o in m.graph.output:
        for d in o.type.tensor_type.shape.dim[2:]:
            d.dim_param = "HO"
    return m


def real_model() -> onnx.ModelProto | None:
    """A network exported by another tool: the onnx package's own test copy of ResNet-50
    (onnx-caffe2, opset 9, IR 3; weights generated by ConstantOfShape nodes)."""
    path = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
    return onnx.load(path) if path.is_file() else None


def cases() -> Iterator[tuple[str, onnx.ModelProto, dict[str, tuple[int, ...]]]]:
    yield "conv opset 11", conv_net(11), {}
    yield "conv opset 12", conv_net(12), {}
    yield "Constant weights (op12)", constant_weights(), {}
    yield "If subgraphs", if_subgraphs(), {}
    yield "dynamic H/W", dynamic_hw(), {"x": (1, 3, 48, 64)}
    for name in ("sample-bev", "bevfusion-camera", "bevdet", "petrv2"):
        for stage, m in build_model(name, size="tiny", seed=0).items():
            yield f"zoo {name}.{stage}", m, {}
    real = real_model()
    if real is not None:
        yield "onnx test ResNet-50 (op9)", real, {}


def ours(m: onnx.ModelProto) -> onnx.ModelProto:
    return convert_model_to_fp16(m)


def onnxruntime_converter(m: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.ModelProto.FromString(m.SerializeToString()),
                                    keep_io_types=True)  # fmt: skip


def onnxruntime_same_keep_list(m: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's converter told to keep orinbench's FP32 op list too: Casts like for like."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    from orinbench.precision.fp16 import DEFAULT_KEEP_OPS

    return convert_float_to_float16(
        onnx.ModelProto.FromString(m.SerializeToString()),
        keep_io_types=True,
        op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(DEFAULT_KEEP_OPS)),
    )


def occ_converter(m: onnx.ModelProto) -> onnx.ModelProto:
    from onnxconverter_common.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.ModelProto.FromString(m.SerializeToString()),
                                    keep_io_types=True)  # fmt: skip


def _all_nodes(g: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for n in g.node:
        yield n
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _all_nodes(sub)


def _float_weights(g: onnx.GraphProto) -> tuple[int, int]:
    """(float32 elements, float16 elements) of initializers and Constant values, all graphs."""
    f32 = f16 = 0
    tensors = list(g.initializer)
    for n in _all_nodes(g):
        for a in n.attribute:
            if a.HasField("t"):
                tensors.append(a.t)
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                tensors.extend(sub.initializer)
    for t in tensors:
        size = int(np.prod(t.dims)) if t.dims else 1
        if t.data_type == TensorProto.FLOAT:
            f32 += size
        elif t.data_type == TensorProto.FLOAT16:
            f16 += size
    return f32, f16


def _session(m: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _feed(m: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    inits = {t.name for t in m.graph.initializer}
    specs = tuple(tensor_spec(v) for v in m.graph.input if v.name not in inits)
    return random_feed(specs, resolve_input_shapes(specs, shapes), seed=0)


def _agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    worst_rel, worst_cos = 0.0, 1.0
    for a, b in zip(ref, got, strict=True):
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        rel = float(np.linalg.norm(a64 - b64) / max(np.linalg.norm(a64), 1e-30))
        cos = float(a64 @ b64 / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-30))
        worst_rel, worst_cos = max(worst_rel, rel), min(worst_cos, cos)
    return worst_rel, worst_cos


def evaluate(conv: Converter, m: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> str:
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            out = conv(m)
    except Exception as exc:
        return f"FAILED ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"
    try:
        onnx.checker.check_model(out)
        check = "yes"
    except Exception:
        check = "no"
    casts = sum(1 for n in _all_nodes(out.graph) if n.op_type == "Cast")
    f32, f16 = _float_weights(out.graph)
    share = f16 / (f32 + f16) if f32 + f16 else 0.0
    try:
        sess = _session(out)
    except Exception as exc:
        first = str(exc).split("\n")[0]
        return f"{check:5} load=NO ({first[first.find(':', 60) + 1 :][:70].strip()}) casts={casts}"
    feed = _feed(m, shapes)
    ref = _session(m).run(None, feed)
    try:
        got = sess.run(None, feed)
    except Exception as exc:
        return f"{check:5} load=yes run=NO ({str(exc).splitlines()[0][-60:]}) casts={casts}"
    rel, cos = _agreement(ref, got)
    return f"{check:5} load=yes casts={casts:<4} fp16w={share:4.0%} rel_l2={rel:.1e} cos={cos:.6f}"


def main() -> int:
    converters: dict[str, Converter] = {
        "orinbench": ours,
        "onnxruntime": onnxruntime_converter,
        "onnxruntime+keep-list": onnxruntime_same_keep_list,
    }
    try:
        import onnxconverter_common

        converters["onnxconverter-common"] = occ_converter
    except ImportError:
        print("onnxconverter-common not importable: left out", file=sys.stderr)
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    if "onnxconverter-common" in converters:
        import onnxconverter_common

        print(f"onnxconverter-common {onnxconverter_common.__version__}")
    print("columns: check (ONNX checker), load (ONNX Runtime CPU), Casts, share of float weights")
    print("stored as fp16, worst output's relative L2 error and cosine vs FP32 (seeded input)\n")
    for name, model, shapes in cases():
        print(name)
        for cname, conv in converters.items():
            print(f"  {cname:<22} {evaluate(conv, model, shapes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
