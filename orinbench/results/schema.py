"""The result of one benchmark, as frozen dataclasses, and its JSON form (schema v2).

The JSON layout is documented in docs/result-schema.md; keep the two in step. Sections owned by
other parts of orinbench (statistics, power, stages, accuracy, device fingerprint) are stored as
plain JSON mappings produced by those parts' own ``to_dict()``, so that adding a field there does
not need a schema change here as long as it is additive.

History of the schema (one upgrade step per version in ``results/upgrade.py``):
  0 -> 1: the pre-release layout kept ``latencies_ms`` at the top level and had no ``quality``.
  1 -> 2: ``config.runtime`` (ONNX Runtime providers and intra-op threads) is required: it is part
     of what makes two results comparable. A v1 file did not record it: the upgrade writes
     ``null`` (unknown) for ONNX Runtime results and ``{}`` for TensorRT ones (the settings do
     not apply there, so nothing is unknown).
  2: current.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

SCHEMA_VERSION = 2

#: names of raw sample series, all in milliseconds
HOST_LATENCY = "latency"  # host end-to-end (inputs in, outputs out), the primary metric
GPU_COMPUTE = "gpu_compute"  # device time between CUDA events around the enqueue
ENQUEUE = "enqueue"  # host time spent in the enqueue call


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output. ``shape`` holds ints and, for dynamic dims, their names."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        return cls(name=str(d["name"]), dtype=str(d["dtype"]), shape=tuple(d["shape"]))

    @property
    def is_static(self) -> bool:
        return all(isinstance(s, int) and s >= 0 for s in self.shape)


@dataclass(frozen=True)
class Environment:
    """What produced the result. ``device`` is the telemetry fingerprint (None where unknown)."""

    host: str
    cpu: str
    os: str
    python: str
    backend: str
    backend_version: str
    device: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cpu": self.cpu,
            "os": self.os,
            "python": self.python,
            "backend": {"name": self.backend, "version": self.backend_version},
            "device": dict(self.device) if self.device is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Environment:
        b = d.get("backend") or {}
        return cls(
            host=str(d.get("host", "")),
            cpu=str(d.get("cpu", "")),
            os=str(d.get("os", "")),
            python=str(d.get("python", "")),
            backend=str(b.get("name", "")),
            backend_version=str(b.get("version", "")),
            device=d.get("device"),
        )


@dataclass(frozen=True)
class ModelRef:
    path: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelRef:
        return cls(
            name=str(d.get("name", "")),
            path=str(d.get("path", "")),
            sha256=str(d.get("sha256", "")),
            inputs=tuple(TensorSpec.from_dict(t) for t in d.get("inputs", ())),
            outputs=tuple(TensorSpec.from_dict(t) for t in d.get("outputs", ())),
        )


def runtime_settings(
    backend: str,
    *,
    providers: Sequence[str] | None = None,
    intra_op_threads: int | None = None,
) -> dict[str, Any]:
    """The ``config.runtime`` section of a result made with ``backend``.

    ONNX Runtime: the execution providers the session really uses (the default is the CPU
    provider) and ``intra_op_threads`` (0: ONNX Runtime's own choice, as in its SessionOptions).
    Other backends have no such settings: ``{}``.
    """
    if backend != "onnxruntime":
        return {}
    return {
        "providers": list(providers) if providers else ["CPUExecutionProvider"],
        "intra_op_threads": int(intra_op_threads or 0),
    }


@dataclass(frozen=True)
class RunConfig:
    """How the run was made: enough to repeat it. ``extra`` carries backend-specific settings.

    ``shapes`` are the concrete input shapes (batch included); ``runtime`` the backend's session
    settings (:func:`runtime_settings`), ``None`` where unknown (a result upgraded from v1).
    Both are comparability keys: the gate refuses to compare results that differ in them.
    """

    backend: str
    precision: str = "fp32"
    warmup: Mapping[str, Any] = field(default_factory=dict)
    stop: Mapping[str, Any] = field(default_factory=dict)
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    input_source: str = "random"
    seed: int = 0
    power_source: str = "none"
    extra: Mapping[str, Any] = field(default_factory=dict)
    runtime: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "warmup": dict(self.warmup),
            "stop": dict(self.stop),
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "input_source": self.input_source,
            "seed": self.seed,
            "power_source": self.power_source,
            "runtime": dict(self.runtime) if self.runtime is not None else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        return cls(
            backend=str(d.get("backend", "")),
            precision=str(d.get("precision", "fp32")),
            warmup=dict(d.get("warmup", {})),
            stop=dict(d.get("stop", {})),
            shapes={k: tuple(v) for k, v in (d.get("shapes") or {}).items()},
            input_source=str(d.get("input_source", "random")),
            seed=int(d.get("seed", 0)),
            power_source=str(d.get("power_source", "none")),
            extra=dict(d.get("extra", {})),
            runtime=dict(d["runtime"]) if d.get("runtime") is not None else None,
        )


@dataclass(frozen=True)
class QualityWarning:
    """A measurement-quality finding, stored with the data so reports and the gate can read it."""

    code: str  # e.g. "few-samples", "high-variation", "drift", "clock-change", "throttling"
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityWarning:
        return cls(code=str(d["code"]), message=str(d["message"]))


@dataclass(frozen=True)
class Result:
    """One benchmark result. ``samples`` maps a series name (constants above) to raw ms values."""

    tool_version: str
    created_utc: str
    environment: Environment
    model: ModelRef
    config: RunConfig
    samples: Mapping[str, tuple[float, ...]]
    stats: Mapping[str, Mapping[str, Any]]
    throughput: Mapping[str, Any]
    stop_reason: str = ""
    warnings: tuple[QualityWarning, ...] = ()
    power: Mapping[str, Any] | None = None
    stages: Mapping[str, Mapping[str, Any]] | None = None
    accuracy: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: which stop rule ended the measured run: iterations, duration, ci, decided, max-seconds
    #: ("" when unknown, as in files written before this field existed)
    stopped_by: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": {"name": "orinbench", "version": self.tool_version},
            "created_utc": self.created_utc,
            "environment": self.environment.to_dict(),
            "model": self.model.to_dict(),
            "config": self.config.to_dict(),
            "samples": {k: list(v) for k, v in self.samples.items()},
            "stats": {k: dict(v) for k, v in self.stats.items()},
            "throughput": dict(self.throughput),
            "quality": {
                "stop_reason": self.stop_reason,
                "stopped_by": self.stopped_by,
                "warnings": [w.to_dict() for w in self.warnings],
            },
            "power": dict(self.power) if self.power is not None else None,
            "stages": {k: dict(v) for k, v in self.stages.items()} if self.stages else None,
            "accuracy": dict(self.accuracy) if self.accuracy is not None else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        q = d.get("quality") or {}
        return cls(
            schema_version=int(d["schema_version"]),
            tool_version=str((d.get("tool") or {}).get("version", "")),
            created_utc=str(d.get("created_utc", "")),
            environment=Environment.from_dict(d["environment"]),
            model=ModelRef.from_dict(d["model"]),
            config=RunConfig.from_dict(d["config"]),
            # a sample stored as null (a non-finite value, see save_result) reads back as NaN
            samples={
                k: tuple(math.nan if x is None else float(x) for x in v)
                for k, v in (d.get("samples") or {}).items()
            },
            stats={k: dict(v) for k, v in (d.get("stats") or {}).items()},
            throughput=dict(d.get("throughput") or {}),
            stop_reason=str(q.get("stop_reason", "")),
            stopped_by=str(q.get("stopped_by") or ""),
            warnings=tuple(QualityWarning.from_dict(w) for w in q.get("warnings", ())),
            power=d.get("power"),
            stages=d.get("stages") or None,
            accuracy=d.get("accuracy"),
            extra=dict(d.get("extra") or {}),
        )

    def with_(self, **changes: Any) -> Result:
        """A copy with some fields replaced (results are immutable)."""
        return replace(self, **changes)

    def metrics(self) -> dict[str, float]:
        """Every numeric leaf as a dotted metric name, the names that targets and the gate use.

        ``stats`` sections appear under their series name (``latency.p99_ms``,
        ``gpu_compute.p50_ms``), ``throughput.fps``, ``power.mean_w``, ``energy.mj_per_inference``
        (when power has it), ``stages.<name>.latency.p99_ms``, ``accuracy.<...>``, ``soak.<...>``.
        """
        out: dict[str, float] = {}
        self._walk_metrics(out, None)
        return out

    def valueless_metrics(self) -> set[str]:
        """The metric names :meth:`metrics` leaves out because their value is null (``None``)
        or not finite: present in the result, but with nothing to judge."""
        out: dict[str, float] = {}
        nulls: set[str] = set()
        self._walk_metrics(out, nulls)
        return nulls

    def _walk_metrics(self, out: dict[str, float], nulls: set[str] | None) -> None:
        for series, st in self.stats.items():
            _flatten(series, st, out, nulls)
        _flatten("throughput", self.throughput, out, nulls)
        if self.power:
            power = dict(self.power)
            energy = power.pop("energy", None)
            _flatten("power", power, out, nulls)
            if isinstance(energy, Mapping):
                _flatten("energy", energy, out, nulls)
        if self.stages:
            for name, st in self.stages.items():
                _flatten(f"stages.{name}", st, out, nulls)
        if self.accuracy:
            _flatten("accuracy", self.accuracy, out, nulls)
        soak = self.extra.get("soak") if self.extra else None
        if isinstance(soak, Mapping):
            _flatten("soak", soak, out, nulls)


def _flatten(prefix: str, obj: Any, out: dict[str, float], nulls: set[str] | None = None) -> None:
    if isinstance(obj, bool):
        return
    if obj is None:
        if nulls is not None:
            nulls.add(prefix)
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(float(obj)):
            out[prefix] = float(obj)
        elif nulls is not None:
            nulls.add(prefix)
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if k in ("samples", "ci", "rails_trace", "trace", "windows"):
                continue  # raw series and intervals are not scalar metrics
            _flatten(f"{prefix}.{k}", v, out, nulls)
