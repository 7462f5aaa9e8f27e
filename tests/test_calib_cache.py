"""TensorRT calibration caches: the text format, version headers, checks and diffs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinbench.calib.cache import (
    CalibrationCache,
    check_cache,
    decode_version,
    diff_caches,
    encode_version,
    hex_to_scale,
    make_cache,
    network_activation_tensors,
    parse_cache,
    read_cache,
    scale_to_hex,
    write_cache,
)
from orinbench.errors import CalibrationError, ExitCode, InputFileError

# A cache as TensorRT 8.6.1's IInt8EntropyCalibrator2 writes it. The scales are float32 bit
# patterns: 3c010204 = 1/127 (a [0, 1] image input), 3e000000 = 0.125, 3f800000 = 1.0.
TRT8601 = (
    "TRT-8601-EntropyCalibration2\n"
    "images: 3c010204\n"
    "/backbone/conv1/Conv_output_0: 3e000000\n"
    "(Unnamed Layer* 12) [Shuffle]_output: 3f800000\n"
)


@pytest.mark.parametrize(
    ("version", "code"),
    [("8.5.2", "8502"), ("8.6.1", "8601"), ("8.6.10", "8610"), ("7.1.3", "7103"),
     ("10.0.1", "100001"), ("10.3.0", "100300"), ("10.14.1.48", "101401")],
)  # fmt: skip
def test_version_codes_follow_nv_tensorrt_version(version: str, code: str) -> None:
    assert encode_version(version) == code
    assert decode_version(code) == ".".join(version.split(".")[:3])


def test_placeholder_version_is_unknown() -> None:
    assert decode_version("8XXX") is None
    cache = parse_cache("TRT-8XXX-EntropyCalibration2\nx: 3e000000\n")
    assert cache.trt_version is None and cache.calibrator == "entropy2"


@pytest.mark.parametrize(
    ("scale", "text"),
    [(0.125, "3e000000"), (1.0, "3f800000"), (2.0, "40000000"), (1 / 127, "3c010204")],
)
def test_scales_are_big_endian_float32_hex(scale: float, text: str) -> None:
    assert scale_to_hex(scale) == text
    assert hex_to_scale(text) == pytest.approx(scale, rel=1e-7)


def test_parse_tensorrt_cache() -> None:
    cache = parse_cache(TRT8601.encode())
    assert cache.header == "TRT-8601-EntropyCalibration2"
    assert cache.trt_version == "8.6.1"
    assert cache.calibrator == "entropy2"
    assert list(cache.scales) == [
        "images",
        "/backbone/conv1/Conv_output_0",
        "(Unnamed Layer* 12) [Shuffle]_output",
    ]
    assert cache.dynamic_range("images") == pytest.approx(1.0, rel=1e-6)
    assert cache.scales["/backbone/conv1/Conv_output_0"] == 0.125
    # written back byte for byte
    assert cache.to_text() == TRT8601


def test_leading_zeros_dropped_by_other_writers_are_accepted() -> None:
    cache = parse_cache("TRT-100300-MinMaxCalibration\nt: 3c23d70a\nsmall: 800000\n")
    assert cache.trt_version == "10.3.0" and cache.calibrator == "minmax"
    assert cache.scales["small"] == pytest.approx(np.float32(2.0**-126 * 1.0), rel=1e-6)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff", r"is not a TensorRT calibration cache: it is not text"),
        (b"images: 3c010204\n", r"first line 'images: 3c010204' is not a TRT-<version>-<algo"),
        (b"", r"first line '' is not a TRT-"),
        (b"TRT-8601-EntropyCalibration2\nimages 3c010204\n", r"line 2 is not 'tensor: hex-scale'"),
        (b"TRT-8601-EntropyCalibration2\nimages: 0x3c01\n", r"line 2 is not"),
        (b"TRT-8601-EntropyCalibration2\na: 3c010204\na: 3e000000\n", r"line 3: tensor 'a'"),
    ],
)  # fmt: skip
def test_foreign_or_broken_caches_are_one_line_errors(data: bytes, pattern: str) -> None:
    with pytest.raises(CalibrationError, match=pattern) as exc:
        parse_cache(data, source="x.cache")
    assert "\n" not in str(exc.value) and exc.value.exit_code == ExitCode.USAGE


def test_read_write_round_trip_is_atomic(tmp_path: Path) -> None:
    cache = make_cache("10.3.0", "minmax", {"a": 0.5, "b": 0.25})
    assert cache.header == "TRT-100300-MinMaxCalibration"
    path = write_cache(tmp_path / "sub" / "m.cache", cache)
    assert read_cache(path) == cache
    # raw bytes from TensorRT are checked before anything is written
    with pytest.raises(CalibrationError):
        write_cache(path, b"garbage that TensorRT never writes")
    assert read_cache(path) == cache
    assert [p.name for p in path.parent.iterdir()] == ["m.cache"]
    with pytest.raises(InputFileError, match="calibration cache not found"):
        read_cache(tmp_path / "missing.cache")


def test_summary_reports_kind_version_count_and_scale_range() -> None:
    s = parse_cache(TRT8601).summary()
    assert s["calibrator"] == "entropy2" and s["trt_version"] == "8.6.1"
    assert s["tensor_count"] == 3
    assert s["scale"]["min"] == pytest.approx(1 / 127, rel=1e-6)
    assert s["scale"]["min_tensor"] == "images"
    assert s["scale"]["max"] == 1.0
    assert s["scale"]["dynamic_range_max"] == pytest.approx(127.0)


def test_check_warns_about_other_versions_and_missing_tensors() -> None:
    cache = parse_cache(TRT8601)
    assert check_cache(cache, trt_version="8.6.2") == []  # same release: fine
    (w,) = check_cache(cache, trt_version="10.3.0")
    assert "comes from TensorRT 8.6.1, this is TensorRT 10.3.0" in w
    tensors = ["images", "/backbone/conv1/Conv_output_0", "neck_out", "head_out"]
    (w,) = check_cache(cache, network_tensors=tensors)
    assert "lacks 2 of the network's 4 tensors (neck_out, head_out)" in w
    unknown = parse_cache("TRT-8XXX-EntropyCalibration2\na: 3e000000\n")
    (w,) = check_cache(unknown, trt_version="8.6.1")
    assert "does not say which TensorRT wrote it" in w


def test_diff_ranks_drift_and_lists_one_sided_tensors() -> None:
    a = CalibrationCache(
        "8601", "EntropyCalibration2", {"x": 0.1, "y": 0.2, "z": 0.4, "a_only": 1.0}
    )
    b = CalibrationCache(
        "8601", "EntropyCalibration2", {"x": 0.1, "y": 0.3, "z": 0.3, "b_only": 1.0}
    )
    d = diff_caches(a, b)
    assert [t.name for t in d.drifts] == ["y", "z", "x"]
    assert d.drifts[0].rel_change == pytest.approx(0.5)
    assert d.drifts[1].rel_change == pytest.approx(-0.25)
    assert d.only_in_a == ("a_only",) and d.only_in_b == ("b_only",)
    assert d.max_abs_rel_change == pytest.approx(0.5)
    assert d.to_dict(top=1)["changed"] == 2 and len(d.to_dict(top=1)["drifts"]) == 1


def test_network_activation_tensors_are_float_tensors_of_the_graph() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Shape", ["m"], ["s"]),  # int64: never calibrated
        helper.make_node(
            "Constant", [], ["c"], value=numpy_helper.from_array(np.ones(2, np.float32))
        ),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]))
    assert network_activation_tensors(model) == ["x", "m", "y"]
    onnx.checker.check_model(model)
