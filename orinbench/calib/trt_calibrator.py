"""TensorRT's implicit INT8 calibrator, fed from a validated :class:`CalibrationDataset`.

The subclass of ``trt.IInt8EntropyCalibrator2`` / ``trt.IInt8MinMaxCalibrator`` is defined inside
:func:`make_calibrator`, so that this module imports without TensorRT. TensorRT drives it during the
engine build:

* ``get_batch(names)`` copies the next batch (``batch`` samples concatenated along axis 0) to
  device buffers and returns their pointers in the order of ``names``; None once the data is
  exhausted, which ends calibration;
* ``read_calibration_cache()`` returns the bytes of an existing cache (checked to be a TensorRT
  cache first), so that a second build skips calibration; None to calibrate;
* ``write_calibration_cache(cache)`` writes the cache TensorRT produced, atomically.

TensorRT calls these from C++; an exception raised inside would be swallowed (TensorRT only logs
it), so the calibrator keeps the first error in ``calibrator.error`` and the caller re-raises it
after the build.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import CalibrationError
from .cache import ALGORITHM_HEADERS, check_cache, parse_cache, read_cache, write_cache
from .dataset import CalibrationDataset, Feed
from .specs import shape_text

#: ``--algo`` values and the TensorRT calibrator class each one uses
CALIBRATOR_CLASSES: dict[str, str] = {
    "entropy2": "IInt8EntropyCalibrator2",
    "minmax": "IInt8MinMaxCalibrator",
}


class CudaMemory(Protocol):
    """The part of the TensorRT backend's CUDA layer (``backends/tensorrt/cuda.py: CudaApi``)
    that the calibrator uses."""

    def device_alloc(self, nbytes: int) -> Any: ...
    def device_ptr(self, buffer: Any) -> int: ...
    def free(self, buffer: Any) -> None: ...
    def stream(self) -> Any: ...
    def stream_synchronize(self, stream: Any) -> None: ...
    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...


def implicit_calibration_support(trt: Any) -> str | None:
    """None when ``trt`` has implicit INT8 calibration, else why not (TensorRT 11 removed it)."""
    version = str(getattr(trt, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major >= 11 or not hasattr(trt, "IInt8EntropyCalibrator2"):
        return f"TensorRT {version} has no implicit INT8 calibration"
    return None


def require_implicit_calibration(trt: Any) -> None:
    """Raise a one-line error that points to ``orinbench quantize`` where calibration is gone."""
    why = implicit_calibration_support(trt)
    if why is not None:
        raise CalibrationError(
            "cannot calibrate with this TensorRT",
            why=why + " (TensorRT 11 builds INT8 only from explicitly quantized Q/DQ models)",
            fix="make a Q/DQ model with 'orinbench quantize MODEL.onnx --data DIR --out "
            "MODEL.qdq.onnx' and build that",
        )


def batches(dataset: CalibrationDataset, batch: int) -> Iterator[Feed]:
    """The dataset's samples, ``batch`` at a time, concatenated along axis 0 (a short last batch
    is dropped: TensorRT calibrates with a fixed batch shape)."""
    if batch < 1:
        raise CalibrationError(f"--batch must be at least 1, not {batch}")
    group: list[Feed] = []
    for feed in dataset.feeds():
        group.append(feed)
        if len(group) == batch:
            yield (
                group[0]
                if batch == 1
                else {k: np.concatenate([g[k] for g in group], axis=0) for k in group[0]}
            )
            group = []


def make_calibrator(
    trt: Any,
    *,
    dataset: CalibrationDataset,
    cache_path: str | os.PathLike[str],
    algo: str = "entropy2",
    batch: int = 1,
    cuda: CudaMemory,
    read_existing: bool = True,
    on_progress: Callable[[int, float], None] | None = None,
) -> Any:
    """A TensorRT INT8 calibrator (an instance of a ``trt.IInt8*Calibrator`` subclass).

    ``cuda`` is the TensorRT backend's CUDA layer (:class:`CudaMemory`; the device must be open,
    its context current). With ``read_existing`` False an existing cache at
    ``cache_path`` is ignored, so calibration runs again and replaces it. After the build,
    ``calibrator.error`` holds the first exception raised inside a callback (or None),
    ``calibrator.batches_served`` the number of batches handed to TensorRT,
    ``calibrator.cache_written`` whether a cache was written, and ``calibrator.warnings`` what
    reading an existing cache found (written by another TensorRT release).
    ``on_progress(batches served, fraction of the dataset)`` is called after each batch.
    """
    require_implicit_calibration(trt)
    if algo not in CALIBRATOR_CLASSES:
        raise CalibrationError(
            f"unknown calibrator '{algo}'", fix=f"use one of {', '.join(CALIBRATOR_CLASSES)}"
        )
    if batch < 1:
        raise CalibrationError(f"--batch must be at least 1, not {batch}")
    if dataset.count < batch:
        raise CalibrationError(
            f"--batch {batch} needs at least {batch} samples; {dataset.source} has {dataset.count}",
            fix="lower --batch or add samples",
        )
    base = getattr(trt, CALIBRATOR_CLASSES[algo])
    path = Path(cache_path)
    header_algo = ALGORITHM_HEADERS[algo]

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            # TensorRT's Python bindings require the base constructor to run explicitly
            base.__init__(self)
            self.algo = algo
            self.batch = batch
            self.cache_path = path
            self.error: BaseException | None = None
            self.batches_served = 0
            self.cache_written = False
            self.warnings: list[str] = []
            self._batches: Iterator[Feed] = batches(dataset, batch)
            self._buffers: dict[str, tuple[Any, int]] = {}
            self._stream: Any = None
            self._staged: list[np.ndarray] = []
            self._shapes: dict[str, tuple[int, ...]] | None = None

        def get_batch_size(self) -> int:
            # explicit-batch networks carry the batch in the input shapes; TensorRT wants 1 here
            return 1

        def _device(self, name: str, array: np.ndarray) -> int:
            """Copy ``array`` into the input's device buffer (grown when a batch is larger)."""
            held = self._buffers.get(name)
            if held is None or held[1] < array.nbytes:
                if held is not None:
                    cuda.free(held[0])
                self._buffers[name] = (cuda.device_alloc(int(array.nbytes)), int(array.nbytes))
            ptr = int(cuda.device_ptr(self._buffers[name][0]))
            host = np.require(array, requirements="C")  # keeps a rank-0 input rank 0
            self._staged.append(host)  # alive until the copy has finished
            cuda.htod_async(ptr, host, self._stream)
            return ptr

        def get_batch(self, names: Sequence[str], *_: Any) -> list[int] | None:
            if self.error is not None:
                return None
            try:
                feed = next(self._batches, None)
                if feed is None:
                    return None
                missing = [n for n in names if n not in feed]
                if missing:
                    raise CalibrationError(
                        f"TensorRT asked for input '{missing[0]}', which the calibration data "
                        "does not hold",
                        fix="calibrate with data for this model's inputs",
                    )
                self._check_shapes({n: tuple(feed[n].shape) for n in names})
                if self._stream is None:
                    self._stream = cuda.stream()
                pointers = [self._device(n, feed[n]) for n in names]
                cuda.stream_synchronize(self._stream)
                self._staged.clear()
                self.batches_served += 1
                if on_progress is not None:
                    total = max(dataset.count // batch, 1)
                    on_progress(self.batches_served, min(self.batches_served / total, 1.0))
                return pointers
            except BaseException as exc:  # TensorRT would swallow it: keep it for the caller
                self.error = exc
                return None

        def _check_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
            # TensorRT reads every batch at one shape per input (a dynamic input's calibration
            # profile is fixed at the first batch's): another shape would be read wrongly.
            if self._shapes is None:
                self._shapes = shapes
                return
            for name, shape in shapes.items():
                first = self._shapes.get(name, shape)
                if shape != first:
                    raise CalibrationError(
                        f"calibration batch {self.batches_served + 1} has '{name}' of shape "
                        f"{shape_text(shape)}, the first batch {shape_text(first)}",
                        why="TensorRT calibrates each input at one shape",
                        fix="give every calibration sample the same shape",
                    )

        def read_calibration_cache(self) -> bytes | None:
            if not read_existing or not path.is_file():
                return None
            try:
                cache = read_cache(path)
            except CalibrationError as exc:
                self.error = exc
                return None
            if cache.algorithm != header_algo:
                return None  # made by another calibrator: calibrate again rather than mix
            self.warnings.extend(
                check_cache(cache, trt_version=str(trt.__version__), source=str(path))
            )
            return path.read_bytes()

        def write_calibration_cache(self, cache: Any) -> None:
            if self.error is not None:
                return  # a failed calibration (or a foreign file at the path) is not overwritten
            try:
                data = bytes(cache)
                parse_cache(data, source="the cache TensorRT produced")
                write_cache(path, data)
                self.cache_written = True
            except BaseException as exc:
                self.error = exc

        def close(self) -> None:
            """Free the device buffers; call after the build."""
            for buffer, _ in self._buffers.values():
                cuda.free(buffer)
            self._buffers.clear()

    return _Calibrator()
