"""TensorRT calibration caches: the text format, version headers, checks and diffs."""

from __future__ import annotations

import math
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


# -- pinned by mutation testing (benchmarks/mutate.py) ------------------------------------------


@pytest.mark.parametrize(
    ("version", "code"),
    [("8", "8000"), ("8.6", "8600"), ("10", "100000"), ("10.0.0", "100000"), ("9.9.99", "9999")],
)
def test_short_versions_are_padded_with_zeros(version: str, code: str) -> None:
    assert encode_version(version) == code


def test_the_tensorrt_10_boundary_decodes() -> None:
    # NV_TENSORRT_VERSION of 10.0.0 is 100000: the first code of the 5-digit scheme
    assert decode_version("100000") == "10.0.0"
    assert decode_version("99999") == "99.9.99"  # the last of the old scheme, read the old way
    assert decode_version("100001") == "10.0.1"


def test_not_a_version_is_a_calibration_error() -> None:
    with pytest.raises(CalibrationError, match="'abc' is not a TensorRT version"):
        encode_version("abc")
    with pytest.raises(CalibrationError, match="unknown calibrator 'percentile'"):
        make_cache("8.6.1", "percentile", {"a": 0.5})


# scales: 0.125, 1.0, 0 (zero), -1.0, +inf, nan
ODD = (
    "TRT-8601-EntropyCalibration2\n"
    "eighth: 3e000000\n"
    "one: 3f800000\n"
    "zero: 0\n"
    "negative: bf800000\n"
    "infinite: 7f800000\n"
    "nan: 7fc00000\n"
)


def test_summary_uses_only_positive_finite_scales() -> None:
    s = parse_cache(ODD).summary()
    assert s["tensor_count"] == 6
    assert s["zero_scales"] == 1 and s["nonfinite_scales"] == 2
    assert s["scale"] == {
        "min": 0.125,
        "max": 1.0,
        "median": 0.5625,
        "min_tensor": "eighth",
        "max_tensor": "one",
        "dynamic_range_min": 0.125 * 127,
        "dynamic_range_max": 127.0,
    }
    # nothing usable: no range at all
    empty = parse_cache("TRT-8601-EntropyCalibration2\nzero: 0\n").summary()
    assert empty["scale"] == {} and empty["zero_scales"] == 1 and empty["nonfinite_scales"] == 0


def test_negative_and_nonfinite_scales_are_warned_about_but_zero_is_not() -> None:
    (w,) = check_cache(parse_cache(ODD))
    assert w == ("the cache has 3 unusable (negative or non-finite) scales, e.g. negative")
    assert check_cache(parse_cache("TRT-8601-EntropyCalibration2\nzero: 0\n")) == []


def test_missing_tensors_are_listed_five_at_most() -> None:
    cache = parse_cache("TRT-8601-EntropyCalibration2\nimages: 3c010204\n")
    five = [f"t{i}" for i in range(5)]
    (w,) = check_cache(cache, network_tensors=["images", *five])
    assert "lacks 5 of the network's 6 tensors (t0, t1, t2, t3, t4): " in w
    (w,) = check_cache(cache, network_tensors=["images", *five, "t5"])
    assert "lacks 6 of the network's 7 tensors (t0, t1, t2, t3, t4, ... (1 more)): " in w
    (w,) = check_cache(cache, network_tensors=["images", *five, "t5", "t6"])
    assert "lacks 7 of the network's 8 tensors (t0, t1, t2, t3, t4, ... (2 more)): " in w


def test_header_shown_in_errors_is_cut_at_60_characters() -> None:
    sixty = "x" * 60
    with pytest.raises(CalibrationError) as info:
        parse_cache(sixty + "\n")
    assert f"its first line '{sixty}' is not" in str(info.value)
    with pytest.raises(CalibrationError) as info:
        parse_cache(sixty + "y\n")
    assert f"its first line '{'x' * 57}...' is not" in str(info.value)


def test_blank_lines_are_skipped_and_a_non_hex_scale_is_a_one_line_error() -> None:
    cache = parse_cache("TRT-8601-EntropyCalibration2\n\na: 3e000000\n  \nb: 3f800000\n")
    assert cache.scales == {"a": 0.125, "b": 1.0}
    with pytest.raises(CalibrationError, match=r"x.cache line 2 is not 'tensor: hex-scale'"):
        parse_cache(b"TRT-8601-EntropyCalibration2\nname: zz\n", source="x.cache")


def test_an_unreadable_cache_is_a_calibration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_cache(tmp_path / "m.cache", parse_cache(TRT8601))

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(CalibrationError) as info:
        read_cache(path)
    assert str(info.value).startswith(f"cannot read {path}: Permission denied")


def test_relative_change_from_a_zero_scale() -> None:
    zero = CalibrationCache("8601", "EntropyCalibration2", {"z": 0.0, "w": 0.0, "s": 2.0})
    other = CalibrationCache("8601", "EntropyCalibration2", {"z": 0.0, "w": 0.5, "s": 3.0})
    d = {t.name: t for t in diff_caches(zero, other).drifts}
    assert d["z"].rel_change == 0.0
    assert d["w"].rel_change == math.inf and d["w"].to_dict()["rel_change"] is None
    assert d["s"].rel_change == 0.5


def test_diff_figures_exactly() -> None:
    a = CalibrationCache("8601", "EntropyCalibration2", {"n": math.nan, "u": 1.0, "v": 0.5})
    b = CalibrationCache("8601", "EntropyCalibration2", {"n": 1.0, "u": 1.0, "v": 0.25})
    d = diff_caches(a, b)
    # a NaN change sorts with the unchanged tensors (by name), after every real change
    assert [t.name for t in d.drifts] == ["v", "n", "u"]
    assert d.max_abs_rel_change == 0.5
    out = d.to_dict()
    assert out["common"] == 3 and out["changed"] == 2
    assert out["drifts"][0] == {"tensor": "v", "scale_a": 0.5, "scale_b": 0.25, "rel_change": -0.5}
    # no common tensors: no drift at all, not an error
    none = diff_caches(a, CalibrationCache("8601", "EntropyCalibration2", {"other": 1.0}))
    assert none.max_abs_rel_change == 0.0 and none.median_abs_rel_change == 0.0
    assert none.to_dict()["max_abs_rel_change"] == 0.0
    # median of |changes| 0.5, 0.0 and 0.25
    c = CalibrationCache("8601", "EntropyCalibration2", {"u": 1.0, "v": 0.5, "w": 4.0})
    e = CalibrationCache("8601", "EntropyCalibration2", {"u": 1.0, "v": 0.75, "w": 3.0})
    assert diff_caches(c, e).median_abs_rel_change == 0.25
