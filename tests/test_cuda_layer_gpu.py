"""The pycuda layer of the TensorRT backend, for real on an NVIDIA GPU (marked ``gpu``).

CI has no GPU and skips these; they were run on the GPU machine (an H100, not a Jetson) with
pycuda built from source there. They check what the strict fake CUDA layer can only imitate:
copies through page-locked memory, CUDA events timing a kernel of known length, graph capture
and replay through the driver, and nested open/close of the primary context.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

if importlib.util.find_spec("pycuda") is None:
    pytest.skip(
        "pycuda is not installed (pip install 'orinbench[jetson]')", allow_module_level=True
    )
if shutil.which("nvidia-smi") is None and not Path("/dev/nvidiactl").exists():
    pytest.skip("no NVIDIA GPU on this machine", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from orinbench.backends.tensorrt.cuda import EventTimer, PyCudaLayer  # noqa: E402
from orinbench.bench.harness import StopRule, Warmup, measure  # noqa: E402


@pytest.fixture
def layer():
    cuda = PyCudaLayer()
    cuda.open(0)
    yield cuda
    cuda.close()


@pytest.fixture
def spin(layer):
    from gpu_timing_accuracy import KERNEL

    compiler = pytest.importorskip("pycuda.compiler")
    module = compiler.SourceModule(KERNEL, no_extern_c=True)
    function = module.get_function("spin")
    function.prepare("QP")
    yield function
    del function, module


def test_round_trip_through_page_locked_and_device_memory(layer) -> None:
    stream = layer.stream()
    src = layer.host_alloc((1 << 20,), np.dtype(np.float32), mapped=False)
    dst = layer.host_alloc((1 << 20,), np.dtype(np.float32), mapped=False)
    src[:] = np.arange(src.size, dtype=np.float32)
    dev = layer.device_alloc(src.nbytes)
    layer.htod_async(layer.device_ptr(dev), src, stream)
    layer.dtoh_async(dst, layer.device_ptr(dev), stream)
    layer.stream_synchronize(stream)
    np.testing.assert_array_equal(dst, src)
    for b in (dev, src, dst):
        layer.free(b)


def test_nested_open_close_keeps_the_context(layer) -> None:
    info = layer.open(0)  # a second runner opening the same device
    assert info.name
    layer.close()
    stream = layer.stream()  # the outer open still holds a current context
    layer.stream_synchronize(stream)


@pytest.mark.parametrize("graph", [False, True])
def test_events_time_a_kernel_of_known_length(layer, spin, graph: bool) -> None:
    from gpu_timing_accuracy import SpinRunner

    runner = SpinRunner(layer, spin, 1_000_000, graph=graph)  # 1 ms
    try:
        m = measure(runner, warmup=Warmup(seconds=0, iterations=5), stop=StopRule(iterations=50))
    finally:
        runner.close()
    kernel_ms = np.array(runner.kernel_ns[-50:]) / 1e6
    assert m.gpu_compute_ms is not None
    # the kernel measured itself on the GPU's global timer; the events around it agree within
    # 0.1 ms (launch latency falls inside the events), and the host sees at least that long
    assert np.all(kernel_ms >= 1.0)
    assert np.all(m.gpu_compute_ms >= kernel_ms - 1e-3)
    assert float(np.median(m.gpu_compute_ms - kernel_ms)) < 0.1
    assert np.all(m.latency_ms >= m.gpu_compute_ms - 1e-3)


def test_event_timer_is_reusable(layer) -> None:
    stream = layer.stream()
    timer = EventTimer(layer, stream)
    for _ in range(3):
        timer.record_start()
        timer.record_stop()
        layer.stream_synchronize(stream)
        assert 0.0 <= timer.elapsed_ms() < 1.0


def _find_cudart() -> str | None:
    import ctypes.util
    import glob
    import site

    for base in [*site.getsitepackages(), *sys.path]:
        hits = sorted(glob.glob(f"{base}/nvidia/cu*/lib/libcudart.so*")) + sorted(
            glob.glob(f"{base}/nvidia/cuda_runtime/lib/libcudart.so*")
        )
        if hits:
            return hits[-1]
    for pattern in ("/usr/local/cuda/lib64/libcudart.so*", "/usr/lib/*/libcudart.so*"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    return ctypes.util.find_library("cudart")


def test_the_runtime_last_error_is_cleared_through_the_loaded_cudart(layer) -> None:
    """The mechanism behind clearing a failed capture's error: a real CUDA runtime error left as
    the thread's last error is read and cleared by the layer, through the libcudart.so that is
    mapped into the process (as TensorRT's would be), and is gone afterwards."""
    import ctypes

    path = _find_cudart()
    if path is None:
        pytest.skip("no libcudart.so to load on this machine")
    cudart = ctypes.CDLL(path)
    cudart.cudaSetDevice.argtypes, cudart.cudaSetDevice.restype = [ctypes.c_int], ctypes.c_int
    assert cudart.cudaSetDevice(10_000) != 0  # an invalid device: sets the last error
    fresh = PyCudaLayer()  # looks up /proc/self/maps now that the runtime is mapped
    assert fresh.clear_last_error() == "cudaErrorInvalidDevice"
    assert fresh.clear_last_error() is None
    cudart.cudaGetLastError.restype = ctypes.c_int
    assert cudart.cudaGetLastError() == 0
