"""ONNX Runtime stages that chain without copies: outputs in buffers bound once, inputs by address.

:class:`OrtChainRunner` is the :class:`~orinbench.backends.onnxruntime.OnnxRuntimeRunner` plus the
:class:`~orinbench.pipeline.chain.ChainRunner` methods. After the first run (which lets ONNX
Runtime allocate outputs of whatever shape the inputs give) each output is re-bound to a numpy
buffer of that shape that the runner owns; a later stage binds that buffer's address as its input
with ``IOBinding.bind_input``. Every frame then runs ``run_with_iobinding`` on each session and
nothing else: no dict building, no copies, the same memory every time, as TensorRT would.

The buffers are host memory. With the CUDA execution provider ONNX Runtime copies into and out of
them inside ``run_with_iobinding``; that is the CI path, not the deployment one (TensorRT chains on
the device).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import numpy as np

from ..backends.onnxruntime import OnnxRuntimeRunner
from ..errors import BackendError, ShapeError
from .chain import CpuMemory, DeviceMemory, DeviceTensor


class OrtChainRunner(OnnxRuntimeRunner):
    """An ONNX Runtime runner whose outputs can be bound as another runner's inputs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fixed: dict[str, DeviceTensor] = {}
        self._device_inputs: dict[str, DeviceTensor] = {}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._fixed = {}
        self._device_inputs = {}
        super().__exit__(exc_type, exc, tb)

    def load_inputs(self, feed: Mapping[str, np.ndarray]) -> None:
        super().load_inputs(feed)
        # outputs are bound for ONNX Runtime to allocate again until the next run fixes them
        self._fixed = {}
        self._device_inputs = {}

    def bind_input_device(self, name: str, tensor: DeviceTensor) -> None:
        """Read input ``name`` from ``tensor``'s memory (host memory: the CPU provider's)."""
        self._require_open()
        spec = next((t for t in self.inputs if t.name == name), None)
        if spec is None:
            raise ShapeError(
                f"cannot bind '{name}': the model has no such input",
                fix=f"its inputs are {', '.join(t.name for t in self.inputs)}",
            )
        if tensor.dtype != spec.dtype:
            raise ShapeError(
                f"input '{name}' is {spec.dtype}, the tensor bound to it is {tensor.dtype}",
                fix="make the producing stage output the consumer's dtype",
            )
        pairs = zip(spec.shape, tensor.shape, strict=False)
        if len(spec.shape) != len(tensor.shape) or any(
            isinstance(d, int) and d >= 0 and d != s for d, s in pairs
        ):
            raise ShapeError(
                f"input '{name}' expects shape {'x'.join(map(str, spec.shape))}, the tensor bound "
                f"to it is {'x'.join(map(str, tensor.shape))}",
                fix="export the two stages with matching shapes",
            )
        if not tensor.host_accessible:
            raise BackendError(
                f"cannot bind '{name}' from {tensor.device} memory to an ONNX Runtime stage",
                why="the ONNX Runtime chain keeps its tensors in host memory",
                fix="run the whole pipeline on one backend (--backend)",
            )
        self._binding.bind_input(
            name, "cpu", 0, np.dtype(tensor.dtype).type, list(tensor.shape), tensor.ptr
        )
        # Keeps the memory alive while bound. Output buffers stay as they are: later stages are
        # bound to them, and a producer may only move its tensor, not reshape it (custom stages
        # check that every frame).
        self._device_inputs[name] = tensor

    def output_device_buffer(self, name: str) -> DeviceTensor:
        """The runner-owned buffer of output ``name`` (valid after one completed run)."""
        self._require_open()
        if not self._fixed:
            self._fix_outputs()
        try:
            return self._fixed[name]
        except KeyError:
            raise ShapeError(
                f"the model has no output '{name}'",
                fix=f"its outputs are {', '.join(t.name for t in self.outputs)}",
            ) from None

    def _fix_outputs(self) -> None:
        values = self._binding.get_outputs()
        if len(values) != len(self.outputs) or not all(v.is_tensor() for v in values):
            raise BackendError(
                "the ONNX Runtime stage has not run yet",
                why="output buffers are sized by the first run",
                fix="run one inference after load_inputs before chaining (the pipeline does)",
            )
        fixed: dict[str, DeviceTensor] = {}
        for spec, value in zip(self.outputs, values, strict=True):
            arr = np.require(value.numpy(), requirements="C")  # rank 0 stays rank 0
            self._binding.bind_output(
                spec.name, "cpu", 0, arr.dtype.type, list(arr.shape), int(arr.ctypes.data)
            )
            fixed[spec.name] = DeviceTensor.from_array(spec.name, arr)
        self._fixed = fixed

    def device_memory(self) -> DeviceMemory:
        return CpuMemory()

    def outputs_host(self) -> dict[str, np.ndarray]:
        if self._fixed:
            return {name: np.array(t.owner) for name, t in self._fixed.items()}
        return super().outputs_host()
