"""Calibration caches TensorRT did not use: log and inspector parsing, the verdict, the double."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinbench.backends.tensorrt.cache_usage import (
    APPLIED,
    IGNORED,
    PARTIAL,
    analyze_layers,
    check_cache_usage,
    classify_layer,
    inspect_against,
    layers_from_json,
    match_cache,
    parse_builder_log,
    require_cache_applied,
)
from orinbench.calib.cache import make_cache, write_cache
from orinbench.errors import CalibrationError

# Lines as TensorRT 8.6 / 10.x print them (through orinbench's logger: "[   t s] [W] message",
# and as trtexec prints them: "[02/12/2024-00:29:48] [TRT] [W] message").
LOG_86 = """\
[    0.101s] [I] [MemUsageChange] Init CUDA: CPU +1, GPU +0, now: CPU 8850, GPU 1074 (MiB)
[    2.310s] [W] Missing scale and zero-point for tensor /backbone/conv1/Conv_output_0, expect \
fall back to non-int8 implementation for any layer consuming or producing given tensor
[    2.311s] [W] Missing scale and zero-point for tensor (Unnamed Layer* 139) [Constant]_output, \
expect fall back to non-int8 implementation for any layer consuming or producing given tensor
[02/12/2024-00:29:48] [TRT] [W] Missing scale and zero-point for tensor /head/Softmax_output_0, \
expect fall back to non-int8 implementation for any layer consuming or producing given tensor
[    2.400s] [W] Setting a default quantization params because quantization data is missing for \
/neck/Add_output_0
"""
LOG_DLA = """\
[W] [TRT] Layer '/model.24/Constant_1_output_0' (CONSTANT): Unsupported on DLA. Switching this \
layer's device type to GPU.
[W] [TRT] Layer '(Unnamed Layer* 277) [Shuffle]' (SHUFFLE): Unsupported on DLA. Switching this \
layer's device type to GPU.
[W] [TRT] Default DLA is enabled but layer Softmax in likelihood calculation is not supported on \
DLA, falling back to GPU.
WARNING: [TRT]: DLA supports only 8 subgraphs per DLA core. Switching to GPU for layer conv_6
[I] [TRT] ---------- Layers Running on DLA ----------
[I] [TRT] [DlaLayer] {ForeignNode[/model.0/conv/Conv.../model.23/Concat]}
[I] [TRT] ---------- Layers Running on GPU ----------
[I] [TRT] [GpuLayer] SHUFFLE: (Unnamed Layer* 277) [Shuffle]
[I] [TRT] [GpuLayer] CONSTANT: /model.24/Constant_1_output_0
"""


def test_builder_log_lines_of_8_6_and_10_are_found() -> None:
    log = parse_builder_log(LOG_86)
    assert log.missing_scale == (
        "/backbone/conv1/Conv_output_0",
        "(Unnamed Layer* 139) [Constant]_output",
        "/head/Softmax_output_0",
    )
    assert log.default_ranges == ("/neck/Add_output_0",)
    assert log.unscaled[-1] == "/neck/Add_output_0" and len(log.unscaled) == 4
    assert log.cache_rejected == () and log.dla_fallback == ()


def test_dla_fallback_and_placement_lines_are_found() -> None:
    log = parse_builder_log(LOG_DLA)
    assert log.dla_fallback == (
        "/model.24/Constant_1_output_0",
        "(Unnamed Layer* 277) [Shuffle]",
        "Softmax in likelihood calculation",
        "conv_6",
    )
    assert log.dla_layers == ("{ForeignNode[/model.0/conv/Conv.../model.23/Concat]}",)
    # the older precision wording (TensorRT 7/8.0, onnx/tensorflow-onnx#1632)
    old = parse_builder_log(
        "[W] [TRT] DLA only supports FP16 and Int8 precision type. Switching (Unnamed Layer* 275) "
        "[Gather] device type to GPU.\n"
    )
    assert old.dla_fallback == ("(Unnamed Layer* 275) [Gather]",)
    assert log.gpu_layers == (
        "SHUFFLE: (Unnamed Layer* 277) [Shuffle]",
        "CONSTANT: /model.24/Constant_1_output_0",
    )


# An inspector document in the 8.6 layout (layers repeated per optimization profile) with a
# reformat layer, a Myelin ForeignNode on the GPU and a DLA ForeignNode.
INSPECTOR_86 = {
    "Layers": [
        {
            "Name": "Reformatting CopyNode for Input Tensor 0 to conv1",
            "LayerType": "Reformat",
            "Inputs": [
                {
                    "Name": "images",
                    "Location": "Device",
                    "Dimensions": [1, 3, 8, 8],
                    "Format/Datatype": "Row major linear FP32",
                }
            ],
            "Outputs": [
                {
                    "Name": "images_r",
                    "Location": "Device",
                    "Dimensions": [1, 3, 8, 8],
                    "Format/Datatype": "Channel major FP16 format where channel % 8 == 0",
                }
            ],
            "ParameterType": "Reformat",
            "Origin": "REFORMAT",
        },
        {
            "Name": "conv1 + relu1",
            "LayerType": "CaskConvolution",
            "ParameterType": "Convolution",
            "Inputs": [{"Name": "images_r", "Format/Datatype": "Channel major FP16 format"}],
            "Outputs": [
                {
                    "Name": "r1",
                    "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format",
                }
            ],
        },
        {
            "Name": "{ForeignNode[/attn/MatMul.../attn/Softmax]}",
            "LayerType": "Myelin",
            "Inputs": [],
            "Outputs": [{"Name": "a", "Format/Datatype": "Half"}],
        },
        {
            "Name": "{ForeignNode[conv2...pool2]}",
            "LayerType": "ForeignNode",
            "Outputs": [{"Name": "p", "Format/Datatype": "Row major linear FP16 format"}],
        },
        {
            "Name": "images to nvm",
            "LayerType": "Reformat",
            "Outputs": [{"Name": "n", "Format/Datatype": "Row major linear FP16 format"}],
        },
        {
            "Name": "conv1 + relu1 [profile 1]",
            "LayerType": "CaskConvolution",
            "Outputs": [{"Name": "r1", "Format/Datatype": "Row major Int8 format"}],
        },
    ],
    "Bindings": ["images", "out"],
}


def test_inspector_layers_per_precision_device_and_reformats() -> None:
    layers = layers_from_json(json.dumps(INSPECTOR_86))
    assert [x["Name"] for x in layers][-1] == "images to nvm"  # profile 1 dropped
    gpu_engine = analyze_layers(layers)
    assert gpu_engine.count == 5
    assert gpu_engine.precision["INT8"] == 1 and gpu_engine.precision["FP16"] == 4
    assert gpu_engine.device == {"GPU": 5}
    assert gpu_engine.reformat == 2  # the CopyNode and the nvm transfer
    dla_engine = analyze_layers(layers, dla_engine=True)
    # only the non-Myelin ForeignNode is a DLA subgraph
    assert dla_engine.device == {"GPU": 4, "DLA": 1}
    assert classify_layer({"Name": "x", "LayerType": "DLA"}).device == "DLA"
    assert classify_layer({"Name": "names only"}).precision == "unknown"


def _cache(names: list[str], version: str = "10.3.0", scale: float = 0.02):  # type: ignore[no-untyped-def]
    return make_cache(version, "entropy2", dict.fromkeys(names, scale))


NETWORK = [f"t{i}" for i in range(20)]


def test_a_cache_for_the_network_is_applied() -> None:
    u = check_cache_usage(
        _cache([*NETWORK, "(Unnamed Layer* 3) [Shuffle]_output"]),
        network_tensors=NETWORK,
        trt_version="10.3.0",
    )
    assert u.verdict == APPLIED and u.matched == 20 and u.expected == 20 and u.ok
    assert u.match.cache_only == ("(Unnamed Layer* 3) [Shuffle]_output",)
    assert require_cache_applied(u) is u


def test_renamed_tensors_mean_the_cache_was_ignored() -> None:
    renamed = [f"/renamed/{t}" for t in NETWORK]
    u = check_cache_usage(_cache(renamed), network_tensors=NETWORK, trt_version="10.3.0")
    assert u.verdict == IGNORED and u.matched == 0
    with pytest.raises(CalibrationError) as exc:
        require_cache_applied(u, cache_path="bev.cache", model_path="bev.onnx")
    msg = str(exc.value)
    assert "0 of 20 network tensors matched" in msg and "ignored" in msg
    assert "\n" not in msg and "renamed tensors" in msg
    assert exc.value.exit_code == 2


def test_a_cache_of_another_release_is_a_note_not_a_verdict() -> None:
    # defect 10: TensorRT may accept a cache of another release; only evidence refuses it
    u = check_cache_usage(
        _cache(NETWORK, version="8.6.1"), network_tensors=NETWORK, trt_version="10.3.0"
    )
    assert u.verdict == APPLIED and u.matched == 20 and u.reasons == ()
    assert any("TensorRT 8.6.1" in n and "10.3.0" in n for n in u.notes)
    same = check_cache_usage(
        _cache(NETWORK, version="10.3.1"), network_tensors=NETWORK, trt_version="10.3.0"
    )
    assert same.verdict == APPLIED and same.notes == ()  # a patch release is the same release
    # the evidence that TensorRT skipped it (no INT8 layer) refuses it, and names the release
    fp16_only = [{"Name": "c", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]}]
    skipped = check_cache_usage(
        _cache(NETWORK, version="8.6.1"),
        network_tensors=NETWORK,
        trt_version="10.3.0",
        layers=fp16_only,
    )
    assert skipped.verdict == IGNORED
    with pytest.raises(CalibrationError) as exc:
        require_cache_applied(skipped, cache_path="old.cache")
    assert "no INT8 layer" in str(exc.value) and "written by TensorRT 8.6.1" in str(exc.value)


def test_partial_coverage_below_the_threshold() -> None:
    half = check_cache_usage(_cache(NETWORK[:12]), network_tensors=NETWORK)
    assert half.verdict == PARTIAL and half.matched == 12
    with pytest.raises(CalibrationError, match=r"only partly applied.*12 of 20"):
        require_cache_applied(half)
    nearly = check_cache_usage(_cache(NETWORK[:18]), network_tensors=NETWORK)
    assert nearly.verdict == APPLIED  # 90 % is the default threshold
    strict = check_cache_usage(_cache(NETWORK[:18]), network_tensors=NETWORK, min_fraction=1.0)
    assert strict.verdict == PARTIAL


def test_the_log_and_the_engine_overrule_matching_names() -> None:
    cache = _cache(NETWORK)
    log = "\n".join(
        f"[W] Missing scale and zero-point for tensor {t}, expect fall back to non-int8 "
        "implementation for any layer consuming or producing given tensor"
        for t in NETWORK[:5]
    )
    u = check_cache_usage(cache, network_tensors=NETWORK, log_text=log)
    assert u.verdict == PARTIAL and u.matched == 15 and u.log_unscaled == tuple(NETWORK[:5])
    fp16_only = [{"Name": "c", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]}]
    u = check_cache_usage(cache, network_tensors=NETWORK, layers=fp16_only)
    assert u.verdict == IGNORED and u.int8_layers == 0 and "no INT8 layer" in u.reasons[0]


def test_zero_and_negative_scales_are_unusable() -> None:
    cache = make_cache("10.3.0", "entropy2", {"a": 0.1, "b": 0.0, "c": -1.0})
    m = match_cache(cache, ["a", "b", "c", "d"])
    assert m.matched == ("a",) and m.unusable == ("b", "c") and m.network_only == ("d",)


def _tiny_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_inspect_against_lists_both_sides(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "m.onnx")
    cache = write_cache(
        tmp_path / "m.cache",
        make_cache("8.6.1", "entropy2", {"x": 0.01, "c": 0.02, "old/name": 0.03}),
    )
    m = inspect_against(cache, model)
    assert m.network_tensors == ("x", "c", "y")
    assert m.matched == ("x", "c")
    assert m.cache_only == ("old/name",) and m.network_only == ("y",)
    assert m.to_dict()["matched"] == 2
