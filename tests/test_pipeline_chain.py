"""Stages chained on the device: ONNX Runtime buffers bound by address, device memory helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _pipeline_models import binary, save, unary

from orinbench.errors import BackendError, ShapeError
from orinbench.pipeline.chain import (
    ChainRunner,
    CpuMemory,
    CudaApiMemory,
    DeviceTensor,
    host_view,
    is_chain_runner,
)
from orinbench.pipeline.ort_chain import OrtChainRunner

pytest.importorskip("onnxruntime")


def test_a_consumer_reads_the_producers_output_buffer_without_a_copy(tmp_path: Path) -> None:
    a = OrtChainRunner(save(unary("x", "y", op="Mul", const=2.0), tmp_path / "a.onnx"))
    b = OrtChainRunner(save(unary("y", "z", op="Add", const=1.0), tmp_path / "b.onnx"))
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    with a, b:
        assert isinstance(a, ChainRunner) and is_chain_runner(a)
        a.load_inputs({"x": x})
        a.enqueue()
        y = a.output_device_buffer("y")
        assert y.shape == (1, 4) and y.dtype == "float32" and y.host_accessible
        np.testing.assert_array_equal(host_view(y), 2 * x)  # the buffer holds the first run's data
        b.load_inputs({"y": np.zeros((1, 4), np.float32)})
        b.bind_input_device("y", y)
        b.enqueue()
        np.testing.assert_array_equal(b.outputs_host()["z"], 2 * x + 1)
        # the next frame: new data in the frame input flows through both, nothing re-bound
        x[:] = 10.0
        a.enqueue()
        b.enqueue()
        np.testing.assert_array_equal(b.outputs_host()["z"], np.full((1, 4), 21.0))
        # the producer writes the same buffer every run, and the consumer reads that buffer
        assert a.output_device_buffer("y").ptr == y.ptr
        host_view(y)[:] = 100.0  # what the consumer reads is that memory, not a copy of it
        b.enqueue()
        np.testing.assert_array_equal(b.outputs_host()["z"], np.full((1, 4), 101.0))


def test_binding_checks_the_consumers_shape_and_dtype(tmp_path: Path) -> None:
    b = OrtChainRunner(save(unary("y", "z"), tmp_path / "b.onnx"))
    with b:
        b.load_inputs({"y": np.zeros((1, 4), np.float32)})
        with pytest.raises(ShapeError, match="expects shape 1x4"):
            b.bind_input_device("y", DeviceTensor.from_array("y", np.zeros((1, 5), np.float32)))
        with pytest.raises(ShapeError, match="float32"):
            b.bind_input_device("y", DeviceTensor.from_array("y", np.zeros((1, 4), np.float64)))
        with pytest.raises(ShapeError, match="no such input"):
            b.bind_input_device("q", DeviceTensor.from_array("q", np.zeros((1, 4), np.float32)))


def test_an_output_buffer_before_any_run_is_refused(tmp_path: Path) -> None:
    a = OrtChainRunner(save(binary("p", "q", "r"), tmp_path / "a.onnx"))
    with a:
        a.load_inputs({"p": np.ones((1, 4), np.float32), "q": np.ones((1, 4), np.float32)})
        with pytest.raises(BackendError, match="has not run yet"):
            a.output_device_buffer("r")


def test_host_view_is_a_view_and_cpu_memory_copies() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = DeviceTensor.from_array("t", arr)
    assert host_view(t) is arr
    # a tensor known only by its address (an OrtValue's, a mapped buffer's) is viewed too
    bare = DeviceTensor("t", t.ptr, (3, 2), "float32", owner=arr)
    v = host_view(bare)
    assert v is not None and v.shape == (3, 2)
    v[0, 0] = 42.0
    assert arr[0, 0] == 42.0
    assert host_view(DeviceTensor("g", 1234, (2,), "float32", device="cuda")) is None
    mem = CpuMemory()
    d = mem.allocate("d", (2, 3), "float32")
    mem.copy_from_host(arr, d)
    out = np.empty((2, 3), np.float32)
    mem.copy_to_host(d, out)
    np.testing.assert_array_equal(out, arr)
    assert host_view(d) is not arr


class FakeCuda:
    """Device memory as numpy arrays behind integer addresses; records each call."""

    def __init__(self) -> None:
        self.mem: dict[int, np.ndarray] = {}
        self.next = 4096
        self.calls: list[str] = []

    def device_alloc(self, nbytes: int) -> int:
        ptr = self.next
        self.next += nbytes + 256
        self.mem[ptr] = np.zeros(nbytes, np.uint8)
        self.calls.append(f"alloc {nbytes}")
        return ptr

    def device_ptr(self, buffer: int) -> int:
        return buffer

    def host_alloc(self, shape: tuple[int, ...], dtype: np.dtype, *, mapped: bool) -> np.ndarray:
        arr = np.zeros(shape, dtype)
        self.mem[int(arr.ctypes.data)] = arr
        self.calls.append(f"host_alloc {mapped}")
        return arr

    def free(self, buffer: int | np.ndarray) -> None:
        del self.mem[int(buffer.ctypes.data) if isinstance(buffer, np.ndarray) else buffer]
        self.calls.append("free")

    def htod_async(self, dst: int, src: np.ndarray, stream: object) -> None:
        self.mem[dst][: src.nbytes] = src.reshape(-1).view(np.uint8)
        self.calls.append("htod")

    def dtoh_async(self, dst: np.ndarray, src: int, stream: object) -> None:
        dst.reshape(-1).view(np.uint8)[:] = self.mem[src][: dst.nbytes]
        self.calls.append("dtoh")

    def stream_synchronize(self, stream: object) -> None:
        self.calls.append("sync")


def test_cuda_api_memory_round_trips_and_frees_everything() -> None:
    cuda = FakeCuda()
    mem = CudaApiMemory(cuda, stream="s0")
    t = mem.allocate("bev", (2, 3), "float16")
    assert t.device == "cuda" and not t.host_accessible and t.nbytes == 12
    src = np.arange(6, dtype=np.float16).reshape(2, 3)
    mem.copy_from_host(src, t)
    out = np.zeros((2, 3), np.float16)
    mem.copy_to_host(t, out)
    np.testing.assert_array_equal(out, src)
    assert cuda.calls == ["alloc 12", "htod", "sync", "dtoh", "sync"]  # copies wait for the stream
    with pytest.raises(ValueError, match="host array"):
        mem.copy_to_host(t, np.zeros((3, 2), np.float16))
    mem.allocate("other", (1,), "int32")
    pinned = mem.host_array((2, 2), "float32")
    assert pinned.shape == (2, 2) and cuda.calls[-1] == "host_alloc False"  # page-locked
    mem.close()
    assert cuda.mem == {} and cuda.calls.count("free") == 3


def test_a_runner_that_cannot_chain_is_refused_naming_the_stage() -> None:
    from orinbench.errors import RecipeError
    from orinbench.pipeline.executor import EngineStage

    class Plain:
        backend = "tensorrt"

    with pytest.raises(RecipeError, match="stage 'backbone': the tensorrt runner cannot chain"):
        EngineStage("backbone", Plain())


def test_a_rank0_tensor_is_chained_as_a_rank0_tensor(tmp_path: Path) -> None:
    # a scalar between stages (a count, a flag): rank 0 on both sides, never reshaped to (1,)
    a = OrtChainRunner(save(unary("x", "y", shape=()), tmp_path / "a.onnx"))
    b = OrtChainRunner(save(unary("y", "z", op="Add", const=1.0, shape=()), tmp_path / "b.onnx"))
    with a, b:
        a.load_inputs({"x": np.array(3.0, np.float32)})
        a.enqueue()
        y = a.output_device_buffer("y")
        assert y.shape == ()
        b.load_inputs({"y": np.array(0.0, np.float32)})
        b.bind_input_device("y", y)
        b.enqueue()
        z = b.outputs_host()["z"]
        assert z.shape == () and float(z) == 7.0


def test_cuda_api_memory_copies_a_rank0_array_as_rank0() -> None:
    mem = CudaApiMemory(FakeCuda(), stream="s0")
    t = mem.allocate("count", (), "int64")
    mem.copy_from_host(np.array(5, np.int64), t)  # refused as shape (1,) before
    out = np.zeros((), np.int64)
    mem.copy_to_host(t, out)
    assert out.shape == () and int(out) == 5
    mem.close()
