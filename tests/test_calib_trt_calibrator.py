"""The TensorRT INT8 calibrator and ``orinbench calibrate``, against the TensorRT test double."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.calib.cache import make_cache, parse_cache, read_cache
from orinbench.calib.calibrate import calibrate
from orinbench.calib.dataset import dataset_from_arrays, write_sample
from orinbench.calib.specs import model_io_specs
from orinbench.calib.trt_calibrator import batches, make_calibrator
from orinbench.errors import CalibrationError, ExitCode, UsageError

ALL_WITH_CALIBRATION = ["8.5", "8.6", "10.3"]
#: the TensorRT double and the fake CUDA layer
trt_env = fx.trt_env


def two_input_model(path: Path, *, dynamic: bool = False) -> Path:
    """a[N,4] (float32), b[N,2,3] (float32) -> y = a @ W + sum(b): two inputs, one output."""
    n: int | str = "n" if dynamic else 1
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, 2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, 2])
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["m"], name="mm"),
        helper.make_node("ReduceSum", ["b", "axes"], ["s"], keepdims=0, name="sum"),
        helper.make_node("Unsqueeze", ["s", "one"], ["s1"], name="unsq"),
        helper.make_node("Add", ["m", "s1"], ["y"], name="add"),
    ]
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    graph = helper.make_graph(nodes, "two", [a, b], [y], [w, axes, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def samples(n: int, *, batch: int = 1, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "a": rng.standard_normal((batch, 4)).astype(np.float32),
            "b": rng.standard_normal((batch, 2, 3)).astype(np.float32),
        }
        for _ in range(n)
    ]


def write_folder(folder: Path, items: list[dict[str, np.ndarray]]) -> Path:
    for i, s in enumerate(items):
        write_sample(folder / f"{i:04d}.npz", s)
    return folder


def _read(env: TrtEnv, ptr: int, like: np.ndarray) -> np.ndarray:
    return np.frombuffer(env.cuda.read(ptr, like.nbytes), like.dtype).reshape(like.shape)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_get_batch_hands_device_pointers_in_the_order_asked(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    inputs, _ = model_io_specs(model)
    items = samples(3)
    ds = dataset_from_arrays(items, inputs=inputs)
    trt_env.cuda.open(0)
    cal = make_calibrator(
        trt_env.trt, dataset=ds, cache_path=tmp_path / "c.cache", cuda=trt_env.cuda
    )
    try:
        assert isinstance(cal, trt_env.trt.IInt8EntropyCalibrator2)
        assert cal.get_batch_size() == 1
        first = cal.get_batch(["b", "a"])  # TensorRT's order, not the dataset's
        assert first is not None and all(isinstance(p, int) for p in first)
        np.testing.assert_array_equal(_read(trt_env, first[0], items[0]["b"]), items[0]["b"])
        np.testing.assert_array_equal(_read(trt_env, first[1], items[0]["a"]), items[0]["a"])
        second = cal.get_batch(["a", "b"])
        assert second is not None
        np.testing.assert_array_equal(_read(trt_env, second[0], items[1]["a"]), items[1]["a"])
        assert cal.get_batch(["a", "b"]) is not None
        assert cal.get_batch(["a", "b"]) is None  # end of data
        assert cal.batches_served == 3 and cal.error is None
    finally:
        cal.close()
        trt_env.cuda.close()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_an_unknown_input_is_kept_as_the_error(trt_env: TrtEnv, tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    ds = dataset_from_arrays(samples(1), inputs=model_io_specs(model)[0])
    trt_env.cuda.open(0)
    cal = make_calibrator(trt_env.trt, dataset=ds, cache_path=tmp_path / "c", cuda=trt_env.cuda)
    try:
        assert cal.get_batch(["a", "zzz"]) is None
        assert isinstance(cal.error, CalibrationError) and "'zzz'" in str(cal.error)
    finally:
        cal.close()
        trt_env.cuda.close()


@pytest.mark.parametrize("trt_env", ALL_WITH_CALIBRATION, indirect=True)
@pytest.mark.parametrize(("algo", "header"), [("entropy2", "EntropyCalibration2"),
                                              ("minmax", "MinMaxCalibration")])  # fmt: skip
def test_calibrate_writes_a_tensorrt_cache(
    trt_env: TrtEnv, tmp_path: Path, algo: str, header: str
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    data = write_folder(tmp_path / "data", samples(5))
    out = tmp_path / "calib" / "m.cache"
    run = calibrate(model, data=data, out=out, algo=algo, max_samples=4)
    cache = read_cache(out)
    version = trt_env.trt.__version__
    assert cache.algorithm == header
    assert cache.trt_version == ".".join(version.split(".")[:3])
    assert run.batches == 4 and run.sample_count == 4
    assert trt_env.testing.calls["calibration_batches"] == 4
    assert {"a", "b", "y"} <= set(cache.scales)
    assert run.tensor_count == len(cache.scales)
    assert run.warnings == ()  # the cache covers the network, same TensorRT
    assert [p.name for p in out.parent.iterdir()] == ["m.cache"]  # no temporary left behind


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_an_existing_cache_is_reused_by_a_build(trt_env: TrtEnv, tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    cache_path = tmp_path / "m.cache"
    make = make_cache("8.6.1", "entropy2", {"a": 0.1, "b": 0.2, "y": 0.3})
    cache_path.write_text(make.to_text())
    ds = dataset_from_arrays(samples(2), inputs=model_io_specs(model)[0])
    trt = trt_env.trt
    trt_env.cuda.open(0)
    cal = make_calibrator(trt, dataset=ds, cache_path=cache_path, cuda=trt_env.cuda)
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = trt.OnnxParser(network, logger)
        assert parser.parse_from_file(str(model))
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = cal
        assert builder.build_serialized_network(network, config) is not None
    finally:
        cal.close()
        trt_env.cuda.close()
    assert trt_env.testing.calls["calibration_from_cache"] == 1
    assert cal.batches_served == 0 and cal.error is None and cal.warnings == []
    assert cache_path.read_text() == make.to_text()  # read, not rewritten


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_cache_from_another_tensorrt_is_reported(trt_env: TrtEnv, tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    cache_path = tmp_path / "old.cache"
    cache_path.write_text(make_cache("8.5.2", "entropy2", {"a": 0.1}).to_text())
    ds = dataset_from_arrays(samples(1), inputs=model_io_specs(model)[0])
    trt_env.cuda.open(0)
    cal = make_calibrator(trt_env.trt, dataset=ds, cache_path=cache_path, cuda=trt_env.cuda)
    try:
        assert cal.read_calibration_cache() == cache_path.read_bytes()
    finally:
        cal.close()
        trt_env.cuda.close()
    (w,) = cal.warnings
    assert "comes from TensorRT 8.5.2, this is TensorRT 10.3.0" in w


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_foreign_file_at_the_cache_path_stops_and_survives(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    cache_path = tmp_path / "notes.cache"
    cache_path.write_text("my notes, not a cache\n")
    ds = dataset_from_arrays(samples(2), inputs=model_io_specs(model)[0])
    trt_env.cuda.open(0)
    cal = make_calibrator(trt_env.trt, dataset=ds, cache_path=cache_path, cuda=trt_env.cuda)
    try:
        assert cal.read_calibration_cache() is None
        assert isinstance(cal.error, CalibrationError)
        assert "is not a TensorRT calibration cache" in str(cal.error)
        assert cal.get_batch(["a", "b"]) is None  # no calibration on top of an error
        cal.write_calibration_cache(b"TRT-100300-EntropyCalibration2\na: 3c010a14\n")
    finally:
        cal.close()
        trt_env.cuda.close()
    assert cache_path.read_text() == "my notes, not a cache\n"


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_write_checks_the_bytes_and_is_atomic(trt_env: TrtEnv, tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    ds = dataset_from_arrays(samples(1), inputs=model_io_specs(model)[0])
    out = tmp_path / "c.cache"
    out.write_text("TRT-100300-EntropyCalibration2\nold: 3e000000\n")
    cal = make_calibrator(
        trt_env.trt, dataset=ds, cache_path=out, cuda=trt_env.cuda, read_existing=False
    )
    assert cal.read_calibration_cache() is None  # read_existing=False: calibrate again
    cal.write_calibration_cache(memoryview(b"\x00\x01 not text"))
    assert isinstance(cal.error, CalibrationError)
    assert parse_cache(out.read_bytes()).scales == {"old": 0.125}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.cache", "m.onnx"]


@pytest.mark.parametrize("trt_env", ["11.4"], indirect=True)
def test_tensorrt_11_points_to_quantize(
    trt_env: TrtEnv, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    data = write_folder(tmp_path / "data", samples(2))
    with pytest.raises(CalibrationError, match="orinbench quantize"):
        calibrate(model, data=data, out=tmp_path / "c.cache")
    code, out, err = run_cli("calibrate", str(model), "--data", str(data), "--out",
                             str(tmp_path / "c.cache"))  # fmt: skip
    assert code == ExitCode.USAGE and out == ""
    assert err.count("\n") == 1 and "TensorRT 11.4.0.106 has no implicit INT8 calibration" in err
    assert "orinbench quantize MODEL.onnx --data DIR --out MODEL.qdq.onnx" in err
    assert not (tmp_path / "c.cache").exists()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_calibrate_cli_end_to_end(
    trt_env: TrtEnv, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    data = write_folder(tmp_path / "data", samples(3))
    out = tmp_path / "m.cache"
    code, stdout, _ = run_cli("calibrate", str(model), "--data", str(data), "--out", str(out),
                              "--algo", "minmax")  # fmt: skip
    assert code == 0, stdout
    assert "calibrated 3 samples in 3 batches with TensorRT 10.3.0 (minmax)" in stdout
    assert read_cache(out).calibrator == "minmax"
    code, stdout, _ = run_cli("calib", "inspect", str(out), "--model", str(model))
    assert code == 0 and "TRT-100300-MinMaxCalibration" in stdout


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_bad_calibration_data_stops_before_tensorrt(trt_env: TrtEnv, tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    bad = samples(2)
    bad[1]["b"] = bad[1]["b"].astype(np.float64)
    data = write_folder(tmp_path / "data", bad)
    with pytest.raises(CalibrationError, match=r"0001\.npz key 'b' has dtype float64"):
        calibrate(model, data=data, out=tmp_path / "c.cache")
    assert trt_env.testing.calls["calibration_batches"] == 0
    with pytest.raises(UsageError, match="--batch 2 needs inputs with a dynamic first dimension"):
        calibrate(model, data=write_folder(tmp_path / "ok", samples(2)), out=tmp_path / "c",
                  batch=2)  # fmt: skip


def test_batches_concatenate_samples_and_drop_a_short_tail(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / "m.onnx", dynamic=True)
    items = samples(5)
    ds = dataset_from_arrays(items, inputs=model_io_specs(model)[0])
    got = list(batches(ds, 2))
    assert len(got) == 2
    assert got[0]["a"].shape == (2, 4) and got[0]["b"].shape == (2, 2, 3)
    np.testing.assert_array_equal(got[1]["a"], np.concatenate([items[2]["a"], items[3]["a"]]))
