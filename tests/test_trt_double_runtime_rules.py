"""The TensorRT double enforces TensorRT's per-version runtime rules (issue 14, item 2).

Each rule is read from the upstream headers and issues (docs in the double's code); nothing here
ran on a real TensorRT. The tests drive the double directly, the way TensorRT's API is used,
so that a double that stopped enforcing a rule fails here and not only through orinbench.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

trt_env = fx.trt_env

PRE9 = ["8.5", "8.6"]
POST9 = ["10.3", "11.4"]


class _Log:
    """A recording logger made from the double's ILogger (as a user subclass)."""

    def __new__(cls, trt: Any) -> Any:
        class Rec(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.messages: list[tuple[str, str]] = []

            def log(self, severity: Any, msg: str) -> None:
                self.messages.append((severity.name, msg))

        return Rec()


def _plan(trt: Any, tmp_path: Path, *, profiles: list[tuple[int, int, int]] | None) -> bytes:
    """The conv model (dynamic batch when ``profiles``) built with one profile per batch range."""
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch=profiles is not None)
    log = _Log(trt)
    builder = trt.Builder(log)
    flags = (
        0
        if trt.__version__.startswith("1")
        else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log)
    assert parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    for lo, opt, hi in profiles or []:
        p = builder.create_optimization_profile()
        p.set_shape("x", (lo, 3, 16, 16), (opt, 3, 16, 16), (hi, 3, 16, 16))
        config.add_optimization_profile(p)
    data = builder.build_serialized_network(network, config)
    assert data is not None, log.messages
    return bytes(data)


def _engine(
    trt: Any, tmp_path: Path, profiles: list[tuple[int, int, int]] | None
) -> tuple[Any, Any]:
    log = _Log(trt)
    data = _plan(trt, tmp_path, profiles=profiles)
    gc.collect()  # the build's Builder is gone: the runtime's logger is its own (8.x rule)
    runtime = trt.Runtime(log)
    engine = runtime.deserialize_cuda_engine(data)
    assert engine is not None, log.messages
    return engine, log


# -- optimization profiles per execution context --------------------------------------------


@pytest.mark.parametrize("trt_env", ["8.5"], indirect=True)
def test_85_only_the_first_context_ever_created_gets_profile_0(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    engine, _ = _engine(trt_env.trt, tmp_path, [(1, 2, 4)])
    first = engine.create_execution_context()
    second = engine.create_execution_context()
    assert first.active_optimization_profile == 0
    assert second.active_optimization_profile == -1
    assert not second.set_input_shape("x", (2, 3, 16, 16))
    del first, second
    gc.collect()
    # 8.5's header: "The first execution context created will call setOptimizationProfile(0)
    # implicitly" -- a later context gets none even when the first is gone
    third = engine.create_execution_context()
    assert third.active_optimization_profile == -1
    assert third.set_optimization_profile_async(0, 0)
    assert third.set_input_shape("x", (2, 3, 16, 16))


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_86_profile_0_is_implicit_only_while_no_other_context_holds_it(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    engine, log = _engine(trt_env.trt, tmp_path, [(1, 2, 4)])
    first = engine.create_execution_context()
    second = engine.create_execution_context()
    assert first.active_optimization_profile == 0
    assert second.active_optimization_profile == -1
    texts = [m for _, m in log.messages]
    assert any("Profile 0 has been chosen by another IExecutionContext" in m for m in texts)
    assert any("Could not set default profile 0" in m for m in texts)
    assert not second.set_input_shape("x", (2, 3, 16, 16))
    assert "mOptimizationProfile >= 0" in log.messages[-1][1]
    # profile 0 is held: selecting it explicitly fails too
    assert not second.set_optimization_profile_async(0, 0)
    del first
    gc.collect()
    third = engine.create_execution_context()  # profile 0 is free again
    assert third.active_optimization_profile == 0


@pytest.mark.parametrize("trt_env", PRE9, indirect=True)
def test_pre9_each_concurrent_context_selects_its_own_profile(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    engine, log = _engine(trt_env.trt, tmp_path, [(1, 2, 4), (1, 2, 4)])
    assert engine.num_optimization_profiles == 2
    a = engine.create_execution_context()
    b = engine.create_execution_context()
    assert b.set_optimization_profile_async(1, 0)
    assert b.active_optimization_profile == 1
    assert b.set_input_shape("x", (3, 3, 16, 16))
    c = engine.create_execution_context()
    assert not c.set_optimization_profile_async(1, 0)  # held by b
    assert "Profile 1 has been chosen by another IExecutionContext" in log.messages[-1][1]
    assert not c.set_optimization_profile_async(2, 0)  # out of range
    assert "profileIndex < mEngine.getNbOptimizationProfiles()" in log.messages[-1][1]
    assert a.active_optimization_profile == 0


@pytest.mark.parametrize("trt_env", PRE9, indirect=True)
def test_pre9_static_engines_are_not_concerned(trt_env: TrtEnv, tmp_path: Path) -> None:
    engine, _ = _engine(trt_env.trt, tmp_path, None)
    contexts = [engine.create_execution_context() for _ in range(3)]
    assert [c.active_optimization_profile for c in contexts] == [0, 0, 0]
    assert all(c.set_input_shape("x", (1, 3, 16, 16)) for c in contexts)


@pytest.mark.parametrize("trt_env", POST9, indirect=True)
def test_from_9_every_context_gets_profile_0(trt_env: TrtEnv, tmp_path: Path) -> None:
    engine, log = _engine(trt_env.trt, tmp_path, [(1, 2, 4)])
    contexts = [engine.create_execution_context() for _ in range(3)]
    assert [c.active_optimization_profile for c in contexts] == [0, 0, 0]
    assert all(c.set_input_shape("x", (2, 3, 16, 16)) for c in contexts)
    assert not [m for sev, m in log.messages if sev == "ERROR"]


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_set_input_shape_is_false_outside_the_profile(trt_env: TrtEnv, tmp_path: Path) -> None:
    engine, log = _engine(trt_env.trt, tmp_path, [(1, 2, 4), (1, 1, 1)])
    ctx = engine.create_execution_context()
    assert ctx.set_input_shape("x", (4, 3, 16, 16))
    assert not ctx.set_input_shape("x", (5, 3, 16, 16))
    assert "out of the optimization profile" in log.messages[-1][1]
    assert ctx.set_optimization_profile_async(1, 0)
    assert not ctx.set_input_shape("x", (2, 3, 16, 16))  # profile 1 is batch 1 only
    assert ctx.set_input_shape("x", (1, 3, 16, 16))


# -- the single logger of TensorRT 8.x ------------------------------------------------------------


@pytest.mark.parametrize("trt_env", PRE9, indirect=True)
def test_8x_keeps_one_logger_while_a_builder_or_runtime_lives(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    trt = trt_env.trt
    first, second = _Log(trt), _Log(trt)
    runtime = trt.Runtime(first)
    other = trt.Runtime(second)  # a different logger while `runtime` is alive: ignored
    assert other.deserialize_cuda_engine(b"not an engine") is None
    assert second.messages == []
    texts = [m for _, m in first.messages]
    assert any("TensorRT maintains only a single logger pointer" in m for m in texts)
    assert any("Magic tag does not match" in m for m in texts)
    del runtime, other
    gc.collect()
    third = trt.Runtime(second)  # nothing alive: the new logger is taken
    assert third.deserialize_cuda_engine(b"still not an engine") is None
    assert any("Magic tag" in m for _, m in second.messages)


@pytest.mark.parametrize("trt_env", POST9, indirect=True)
def test_from_9_each_runtime_uses_its_own_logger(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    first, second = _Log(trt), _Log(trt)
    keep = trt.Runtime(first)
    assert trt.Runtime(second).deserialize_cuda_engine(b"x" * 32) is None
    assert any("Magic tag" in m for _, m in second.messages)
    assert first.messages == [] and keep is not None


@pytest.mark.parametrize("trt_env", PRE9, indirect=True)
def test_an_engine_keeps_its_runtime_and_so_the_logger_pointer(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    trt = trt_env.trt
    engine, first = _engine(trt, tmp_path, None)  # its runtime is referenced by the engine only
    gc.collect()
    second = _Log(trt)
    trt.Runtime(second).deserialize_cuda_engine(b"bad")
    assert second.messages == [] and engine is not None
    assert any("Magic tag" in m for _, m in first.messages)


# -- shape tensors ---------------------------------------------------------------------------


def shape_tensor_plan(trt: Any, path: Path) -> Path:
    """An engine file whose input ``s`` is a shape tensor (TensorLocation.HOST): y = reshape(x, s).

    Written in the double's plan format directly (the double's builder does not model shape
    tensors; real TensorRT also needs ``set_shape_input`` profiles to build one)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], "g", [x, s], [y]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    from tensorrt import _plan  # the double's plan format
    from tensorrt._version import TAG, VERSION

    cfg = trt._testing.config
    header = {
        "trt_version": VERSION,
        "tag": TAG,
        "compute_capability": cfg.compute_capability,
        "device_name": cfg.device_name,
        "plugins": [],
        "io": [
            {"name": "x", "mode": "INPUT", "dtype": "FLOAT", "shape": [1, 8], "location": "DEVICE"},
            {"name": "s", "mode": "INPUT", "dtype": "INT32", "shape": [2], "location": "HOST"},
            {
                "name": "y",
                "mode": "OUTPUT",
                "dtype": "FLOAT",
                "shape": [-1, -1],
                "location": "DEVICE",
            },
        ],
        "profiles": [],
        "layers": [
            {"name": "r", "type": "Reshape", "precision": "FP32", "weight": 1.0, "outputs": ["y"]}
        ],
        "verbosity": "DETAILED",
        "strongly_typed": False,
        "dla_core": None,
        "inference_ms": 1.0,
    }
    path.write_bytes(_plan.dump(header, model.SerializeToString()))
    return path


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_output_shapes_wait_for_the_shape_tensor_address(trt_env: TrtEnv, tmp_path: Path) -> None:
    trt, cuda = trt_env.trt, trt_env.cuda
    data = shape_tensor_plan(trt, tmp_path / "st.engine").read_bytes()
    log = _Log(trt)
    engine = trt.Runtime(log).deserialize_cuda_engine(data)
    assert engine.get_tensor_location("s") == trt.TensorLocation.HOST
    cuda.open(0)
    try:
        host = cuda.host_alloc((2,), np.int32, mapped=False)
        host[:] = (2, 4)
        ctx = engine.create_execution_context()
        assert ctx.set_input_shape("s", (2,))
        assert tuple(ctx.get_tensor_shape("y")) == (-1, -1)  # the value is not known yet
        assert ctx.infer_shapes() == ["s"]
        assert ctx.set_tensor_address("s", cuda.host_ptr(host))
        assert tuple(ctx.get_tensor_shape("y")) == (2, 4)
        assert ctx.infer_shapes() == []
        host[:] = (4, 2)  # the value is read where it lives
        assert tuple(ctx.get_tensor_shape("y")) == (4, 2)
        cuda.free(host)
    finally:
        cuda.close()


# -- a stale CUDA error after a failed capture ---------------------------------------------------


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_failed_capture_leaves_an_error_that_fails_the_next_enqueue(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    trt, cuda = trt_env.trt, trt_env.cuda
    engine, log = _engine(trt, tmp_path, None)
    cuda.open(0)
    stream = cuda.stream()
    h = cuda.stream_handle(stream)
    bufs = [cuda.device_alloc(1 * 3 * 16 * 16 * 4), cuda.device_alloc(4 * 4)]
    try:
        ctx = engine.create_execution_context()
        ctx.set_tensor_address("x", cuda.device_ptr(bufs[0]))
        ctx.set_tensor_address("y", cuda.device_ptr(bufs[1]))
        assert ctx.execute_async_v3(h)  # the first enqueue, outside capture
        cuda.stream_synchronize(stream)
        cuda.capture_unsupported = True
        cuda.begin_capture(stream)
        assert not ctx.execute_async_v3(h)
        cuda.abort_capture(stream)  # the driver's cuStreamEndCapture: the error stays
        cuda.capture_unsupported = False
        assert cuda.last_error is not None
        assert not ctx.execute_async_v3(h)  # poisoned by the stale error, which it consumes
        assert "cudaErrorStreamCaptureUnsupported" in log.messages[-1][1]
        assert ctx.execute_async_v3(h)
        cuda.stream_synchronize(stream)
        # cleared (cudaGetLastError) after the failed capture: the next enqueue works
        cuda.capture_unsupported = True
        cuda.begin_capture(stream)
        assert not ctx.execute_async_v3(h)
        cuda.abort_capture(stream)
        cuda.capture_unsupported = False
        assert cuda.clear_last_error() is not None and cuda.clear_last_error() is None
        assert ctx.execute_async_v3(h)
        cuda.stream_synchronize(stream)
    finally:
        for b in bufs:
            cuda.free(b)
        cuda.close()
