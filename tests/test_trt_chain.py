"""TensorRTRunner's chaining methods (output_device_buffer / bind_input_device / device_memory)
and the nesting of the CUDA layer's open/close, against the TensorRT double and the fake CUDA.

The double reads each input from the address the context holds at enqueue time, and a CUDA
graph replays the addresses it was captured with, so a binding that did not take effect (or a
stale graph) shows up as a wrong output value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _pipeline_models import save, unary
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench import _lazy
from orinbench.backends.tensorrt import BuildOptions, TensorRTRunner, build_engine
from orinbench.backends.tensorrt.cuda import PyCudaLayer
from orinbench.errors import BackendError, ShapeError
from orinbench.pipeline.chain import CudaApiMemory, DeviceTensor

trt_env = fx.trt_env

X = np.arange(4, dtype=np.float32).reshape(1, 4)


def _engines(tmp_path: Path) -> tuple[Path, Path]:
    """a: x -> y = 2x; b: y -> z = y + 1 (both float32 [1, 4])."""
    a = save(unary("x", "y", op="Mul", const=2.0), tmp_path / "a.onnx")
    b = save(unary("y", "z", op="Add", const=1.0), tmp_path / "b.onnx")
    return (
        build_engine(a, tmp_path / "a.engine", BuildOptions()).engine_path,
        build_engine(b, tmp_path / "b.engine", BuildOptions()).engine_path,
    )


def _run(runner: TensorRTRunner) -> None:
    runner.stage_inputs()
    runner.enqueue()
    runner.fetch_outputs()
    runner.synchronize()


@pytest.fixture
def pair(trt_env: TrtEnv, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Two open runners, a and b; a has run once on X; b is loaded with a placeholder."""
    graph = bool(getattr(request, "param", False))
    ea, eb = _engines(tmp_path)
    with ExitStack() as stack:
        a = stack.enter_context(TensorRTRunner(ea, cuda_graph=graph))
        b = stack.enter_context(TensorRTRunner(eb, cuda_graph=graph))
        a.load_inputs({"x": X})
        _run(a)
        b.load_inputs({"y": np.zeros((1, 4), np.float32)})
        yield SimpleNamespace(a=a, b=b, cuda=trt_env.cuda)


def test_an_output_is_described_where_the_engine_writes_it(pair: Any) -> None:
    y = pair.a.output_device_buffer("y")
    assert (y.name, y.shape, y.dtype, y.device, y.device_id) == ("y", (1, 4), "float32", "cuda", 0)
    assert not y.host_accessible
    assert pair.a._lanes[0].context.get_tensor_address("y") == y.ptr
    data = pair.cuda.read(y.ptr, y.nbytes)
    np.testing.assert_array_equal(np.frombuffer(data, np.float32).reshape(1, 4), 2 * X)
    # the same buffer every time, and every later run writes it
    assert pair.a.output_device_buffer("y").ptr == y.ptr
    pair.a.load_inputs({"x": X + 1})
    _run(pair.a)
    assert pair.a.output_device_buffer("y").ptr == y.ptr
    data = pair.cuda.read(y.ptr, y.nbytes)
    np.testing.assert_array_equal(np.frombuffer(data, np.float32).reshape(1, 4), 2 * (X + 1))


def test_a_bound_input_is_read_in_place_without_a_copy(pair: Any) -> None:
    a, b, cuda = pair.a, pair.b, pair.cuda
    b.bind_input_device("y", a.output_device_buffer("y"))
    htod = cuda.ran["htod"]
    _run(b)
    assert cuda.ran["htod"] == htod  # nothing copied in: b read a's buffer
    np.testing.assert_allclose(b.outputs_host()["z"], 2 * X + 1)
    # a's next run changes what b reads, with no copy in between
    a.load_inputs({"x": X * 10})
    _run(a)
    _run(b)
    np.testing.assert_allclose(b.outputs_host()["z"], 20 * X + 1)
    assert cuda.ran["htod"] == htod + 1  # a's own input only
    # load_inputs ends the binding: b reads its own buffer (the host feed) again
    b.load_inputs({"y": np.full((1, 4), 5.0, np.float32)})
    assert b._lanes[0].context.get_tensor_address("y") != a.output_device_buffer("y").ptr
    _run(b)
    np.testing.assert_allclose(b.outputs_host()["z"], np.full((1, 4), 6.0))


@pytest.mark.parametrize("pair", [True], indirect=True)
def test_a_cuda_graph_is_captured_again_with_the_bound_address(pair: Any) -> None:
    a, b, cuda = pair.a, pair.b, pair.cuda
    assert b.cuda_graph_active
    b.bind_input_device("y", a.output_device_buffer("y"))
    assert b.cuda_graph_active and b.notes == []
    launches = cuda.graph_launches
    _run(b)
    assert cuda.graph_launches == launches + 1
    np.testing.assert_allclose(b.outputs_host()["z"], 2 * X + 1)


def test_bindings_that_cannot_work_are_refused(pair: Any) -> None:
    a, b = pair.a, pair.b
    y = a.output_device_buffer("y")
    with pytest.raises(ShapeError, match=r"no input 'x'.*inputs are y"):
        b.bind_input_device("x", y)
    with pytest.raises(ShapeError, match="no output 'x'"):
        a.output_device_buffer("x")
    with pytest.raises(ShapeError, match=r"input 'y' is float32 1x4.* is float32 1x2"):
        b.bind_input_device("y", DeviceTensor("y", y.ptr, (1, 2), "float32", "cuda", 0, owner=y))
    with pytest.raises(ShapeError, match=r"input 'y' is float32 1x4.* is float16 1x4"):
        b.bind_input_device("y", DeviceTensor("y", y.ptr, (1, 4), "float16", "cuda", 0, owner=y))
    host = DeviceTensor.from_array("y", np.zeros((1, 4), np.float32))
    with pytest.raises(ShapeError, match="cannot read cpu:0 memory"):
        b.bind_input_device("y", host)
    with pytest.raises(ShapeError, match="cuda:1 memory"):
        b.bind_input_device("y", DeviceTensor("y", y.ptr, (1, 4), "float32", "cuda", 1))
    # TensorRT itself refuses a misaligned address; the error carries its message
    odd = DeviceTensor("y", y.ptr + 4, (1, 4), "float32", "cuda", 0, owner=y)
    with pytest.raises(BackendError, match="aligned to 256 bytes"):
        b.bind_input_device("y", odd)
    # nothing was bound by the refused calls: b still copies its own input
    htod = pair.cuda.ran["htod"]
    _run(b)
    assert pair.cuda.ran["htod"] == htod + 1
    np.testing.assert_allclose(b.outputs_host()["z"], np.ones((1, 4)))


def test_chaining_needs_loaded_inputs(trt_env: TrtEnv, tmp_path: Path) -> None:
    ea, _ = _engines(tmp_path)
    with TensorRTRunner(ea) as a:
        with pytest.raises(BackendError, match="no inputs loaded"):
            a.output_device_buffer("y")
        with pytest.raises(BackendError, match="no inputs loaded"):
            a.bind_input_device("x", DeviceTensor("x", 0, (1, 4), "float32", "cuda"))


def test_device_memory_allocates_and_copies_in_the_runners_context(pair: Any) -> None:
    a, b, cuda = pair.a, pair.b, pair.cuda
    mem = a.device_memory()
    assert isinstance(mem, CudaApiMemory) and mem.stream is a._lanes[0].stream
    live = cuda.live_allocations()
    t = mem.allocate("y", (1, 4), "float32")
    host = mem.host_array((1, 4), "float32")
    assert cuda.live_allocations() == live + 2
    mem.copy_from_host(np.full((1, 4), 7.0, np.float32), t)
    b.bind_input_device("y", t)  # memory from one runner feeds another
    _run(b)
    np.testing.assert_allclose(b.outputs_host()["z"], np.full((1, 4), 8.0))
    mem.copy_to_host(b.output_device_buffer("z"), host)
    np.testing.assert_allclose(host, np.full((1, 4), 8.0))
    mem.close()
    assert cuda.live_allocations() == live


def test_the_profiling_context_reads_the_bound_input(trt_env: TrtEnv, pair: Any) -> None:
    a, b = pair.a, pair.b
    y = a.output_device_buffer("y")
    b.bind_input_device("y", y)
    context, _ = b.profiling_context(trt_env.trt.IProfiler())
    assert context.get_tensor_address("y") == y.ptr


def test_runners_open_and_close_the_cuda_layer_in_nested_pairs(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    ea, eb = _engines(tmp_path)
    cuda = trt_env.cuda
    with TensorRTRunner(ea) as a:
        assert cuda.depth == 1
        with TensorRTRunner(eb) as b:
            assert cuda.depth == 2
            a.load_inputs({"x": X})
            b.load_inputs({"y": X})
        assert cuda.depth == 1
        _run(a)  # the first runner still works after the second closed
        np.testing.assert_allclose(a.outputs_host()["y"], 2 * X)
    assert cuda.depth == 0


class _FakeDriver:
    """The part of pycuda.driver that PyCudaLayer.open/close use, counting retains and pushes."""

    def __init__(self) -> None:
        self.stack: list[_FakeContext] = []
        self.retained = 0
        driver = self

        class Context:
            @staticmethod
            def pop() -> None:
                driver.stack.pop()

        class Device:
            @staticmethod
            def count() -> int:
                return 1

            def __init__(self, index: int) -> None:
                self.index = index

            def retain_primary_context(self) -> _FakeContext:
                driver.retained += 1
                return _FakeContext(driver)

            def compute_capability(self) -> tuple[int, int]:
                return (8, 7)

            def name(self) -> str:
                return "Orin (nvgpu)"

            def get_attribute(self, attr: str) -> int:
                return 1

            def total_memory(self) -> int:
                return 8 << 30

        self.Context = Context
        self.Device = Device
        self.device_attribute = SimpleNamespace(INTEGRATED="i", CAN_MAP_HOST_MEMORY="m")

    def init(self) -> None:
        pass


class _FakeContext:
    def __init__(self, driver: _FakeDriver) -> None:
        self.driver = driver

    def push(self) -> None:
        self.driver.stack.append(self)

    def detach(self) -> None:
        self.driver.retained -= 1


def test_the_pycuda_layer_nests_opens_on_the_primary_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = _FakeDriver()
    monkeypatch.setattr(_lazy, "pycuda_driver", lambda: driver)
    layer = PyCudaLayer()  # one layer shared by two runners
    assert layer.open(0).name == "Orin (nvgpu)"
    layer.open(0)
    assert len(driver.stack) == 2 and driver.retained == 2
    layer.close()
    # the first open still holds the primary context, current and retained
    assert len(driver.stack) == 1 and driver.retained == 1
    layer.close()
    assert driver.stack == [] and driver.retained == 0
    layer.close()  # nothing open: nothing to undo
    assert driver.stack == [] and driver.retained == 0
