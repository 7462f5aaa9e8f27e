"""ONNX Runtime runner: the FP32 reference, and the backend that runs everywhere (CI included).

The session is created once in ``__enter__``; inputs are bound through an IOBinding so that the
timed ``enqueue`` is ``run_with_iobinding`` alone: no per-iteration dict building or validation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .. import _lazy
from ..errors import BackendError, DependencyMissingError, ModelError, ShapeError, UsageError
from ..model.shapes import format_shape
from ..results.schema import TensorSpec
from .base import DeviceTimer, check_feed

#: ONNX Runtime's tensor type strings -> numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (str(d) if d else "?") for d in arg.shape)
    return TensorSpec(name=arg.name, dtype=_ORT_TYPES.get(arg.type, arg.type), shape=shape)


def ort_version() -> str:
    try:
        return str(_lazy.onnxruntime().__version__)
    except DependencyMissingError:
        return "unavailable"


def check_providers(providers: Sequence[str]) -> None:
    """Raise :class:`BackendError` unless this onnxruntime build has every one of ``providers``;
    commands that write files before they run a model check ``--ort-providers`` with it first."""
    available = set(_lazy.onnxruntime().get_available_providers())
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendError(
            f"ONNX Runtime execution provider(s) {', '.join(missing)} not available",
            why=f"this onnxruntime build has {', '.join(sorted(available))}",
            fix="install the onnxruntime build that has them (onnxruntime-gpu) or drop "
            "--ort-providers",
        )


class OnnxRuntimeRunner:
    """Runs an ONNX model with ONNX Runtime. Use as a context manager."""

    backend = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        graph_optimization: str = "all",
    ) -> None:
        self._model = model
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        if intra_op_threads is not None and (
            isinstance(intra_op_threads, bool)
            or not isinstance(intra_op_threads, int)
            or intra_op_threads < 1
        ):
            raise UsageError(
                f"--ort-threads must be a whole number of at least 1, not {intra_op_threads!r}",
                fix="pass e.g. --ort-threads 4, or leave it out for ONNX Runtime's choice",
            )
        self._threads = intra_op_threads
        self._opt = graph_optimization
        self._session: Any = None
        self._binding: Any = None
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._fed: dict[str, np.ndarray] = {}
        self._last: list[np.ndarray] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> OnnxRuntimeRunner:
        ort = _lazy.onnxruntime()
        so = ort.SessionOptions()
        # 4 = fatal only: ONNX Runtime logs a failed run as a coloured ERROR line of its own;
        # the user sees orinbench's one-line error instead (which carries ORT's message)
        so.log_severity_level = 4
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        so.graph_optimization_level = levels[self._opt]
        if self._threads:
            so.intra_op_num_threads = int(self._threads)
        check_providers(self._providers)
        source = self._model if isinstance(self._model, bytes) else str(Path(self._model))
        try:
            self._session = ort.InferenceSession(source, sess_options=so, providers=self._providers)
        except Exception as exc:  # ORT raises its own exception types for invalid graphs
            name = "the model" if isinstance(self._model, bytes) else str(self._model)
            raise ModelError(
                f"ONNX Runtime cannot load {name}",
                why=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                fix="check the model with 'orinbench inspect' and re-export it",
            ) from exc
        self._inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._session.get_outputs())
        self._binding = self._session.io_binding()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._binding = None
        self._session = None
        self._fed = {}
        self._last = None

    # -- description ---------------------------------------------------------------------------
    @property
    def backend_version(self) -> str:
        return ort_version()

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers()) if self._session is not None else []

    @property
    def intra_op_threads(self) -> int:
        """The intra-op thread count asked for; 0 is ONNX Runtime's own choice."""
        return int(self._threads or 0)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    # -- running -------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._session is None:
            raise BackendError(
                "the ONNX Runtime runner is not open", fix="use it inside a 'with' block"
            )

    def load_inputs(self, feed: Mapping[str, np.ndarray]) -> None:
        self._require_open()
        arrays = check_feed(self._inputs, feed)
        for spec in self._inputs:
            arr = arrays[spec.name]
            if len(arr.shape) != len(spec.shape) or any(
                isinstance(d, int) and d >= 0 and d != s
                for d, s in zip(spec.shape, arr.shape, strict=True)
            ):
                raise ShapeError(
                    f"input '{spec.name}' has shape {format_shape(arr.shape)}, the model "
                    f"expects {format_shape(spec.shape)}",
                    fix="pass data of the model's shape (or --shape for dynamic dimensions)",
                )
            self._fed[spec.name] = arr
            self._binding.bind_cpu_input(spec.name, arr)
        for spec in self._outputs:
            self._binding.bind_output(spec.name)

    def stage_inputs(self) -> None:
        return None

    def enqueue(self) -> None:
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise BackendError(
                "ONNX Runtime failed while running the model",
                why=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                fix="check input shapes with 'orinbench inspect'",
            ) from exc

    def fetch_outputs(self) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def device_timer(self) -> DeviceTimer | None:
        return None

    def outputs_host(self) -> dict[str, np.ndarray]:
        self._require_open()
        values = self._binding.copy_outputs_to_cpu()
        return {spec.name: np.array(v) for spec, v in zip(self._outputs, values, strict=True)}

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.load_inputs(feed)
        self.enqueue()
        return self.outputs_host()
