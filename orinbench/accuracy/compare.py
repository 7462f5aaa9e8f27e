"""``orinbench accuracy``: run the FP32 reference and a candidate on the same samples, compare.

The reference is an ONNX model run by ONNX Runtime in FP32. The candidate is a Q/DQ ONNX model, an
FP16 ONNX model (both run by ONNX Runtime) or a TensorRT engine (``.engine``/``.plan``, run by the
TensorRT backend). Per output the report holds, over the samples (docs/calibration.md)::

    cosine        {"mean", "min"}       cosine similarity
    max_abs       {"max", "mean"}       max absolute error (per sample, then max/mean)
    rel_l2        {"max", "mean"}       relative L2 error |c - r| / |r|
    topk_agreement {"mean", "min", "k"} heatmap outputs only

and over all outputs ``cosine.min``, ``max_abs.max``, ``rel_l2.max``, ``rel_l2.mean`` and, when a
heatmap output exists, ``topk_agreement.min``: the names the gate reads as ``accuracy.rel_l2.max``.
A candidate output with NaN/Inf counts as the worst possible (``rel_l2`` and ``max_abs`` become
the largest float, ``cosine`` 0) and is counted in ``nonfinite_samples``. So does a reference
output with NaN/Inf (the FP32 model overflowed on that sample): there is nothing to measure the
candidate against, and a comparison that cannot be made must fail a budget, never pass it. Such
samples are counted in ``nonfinite_reference_samples``. Any metric that still comes out NaN is
taken as its worst value too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._io import require_file
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..calib.dataset import CalibrationDataset, open_dataset
from ..calib.specs import io_specs
from ..errors import DependencyMissingError, ModelError, UsageError
from ..model.identity import artifact_sha256
from ..model.identity import guess_precision as _guess_onnx_precision
from ..model.load import load_model
from ..results.schema import ModelRef, Result, RunConfig, TensorSpec
from .metrics import (
    DEFAULT_TOPK,
    cosine_similarity,
    is_heatmap_name,
    max_abs_error,
    rel_l2_error,
    topk_agreement,
)

#: a non-finite error is stored as this (JSON has no Inf; the gate must still see a failure)
WORST = sys.float_info.max
#: file suffixes taken as TensorRT engines
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
#: the loss measures ``AccuracyReport.loss`` knows (lower is better)
LOSS_METRICS = ("rel_l2", "cosine", "max_abs", "topk")

Outputs = dict[str, np.ndarray]
Progress = Callable[[int, float], None]


def _nonfinite(a: np.ndarray) -> bool:
    return a.dtype.kind in "fc" and not bool(np.isfinite(a).all())


def _finite(x: float) -> float:
    return x if np.isfinite(x) else WORST


@dataclass(frozen=True)
class OutputMetrics:
    """The comparison of one output over all samples."""

    name: str
    samples: int
    cosine_mean: float
    cosine_min: float
    max_abs_max: float
    max_abs_mean: float
    rel_l2_max: float
    rel_l2_mean: float
    topk_mean: float | None = None
    topk_min: float | None = None
    topk_k: int | None = None
    nonfinite_samples: int = 0
    nonfinite_reference_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "cosine": {"mean": self.cosine_mean, "min": self.cosine_min},
            "max_abs": {"max": _finite(self.max_abs_max), "mean": _finite(self.max_abs_mean)},
            "rel_l2": {"max": _finite(self.rel_l2_max), "mean": _finite(self.rel_l2_mean)},
        }
        if self.topk_mean is not None:
            d["topk_agreement"] = {"mean": self.topk_mean, "min": self.topk_min, "k": self.topk_k}
        if self.nonfinite_samples:
            d["nonfinite_samples"] = self.nonfinite_samples
        if self.nonfinite_reference_samples:
            d["nonfinite_reference_samples"] = self.nonfinite_reference_samples
        return d


class OutputAccumulator:
    """Collects per-sample metrics of one output; ``result()`` aggregates them."""

    def __init__(self, name: str, *, heatmap: bool, topk: int) -> None:
        self.name = name
        self.heatmap = heatmap
        self.topk = topk
        self._cos: list[float] = []
        self._abs: list[float] = []
        self._rel: list[float] = []
        self._top: list[float] = []
        self._nonfinite = 0
        self._nonfinite_reference = 0

    def add(self, reference: np.ndarray, candidate: np.ndarray, *, origin: str = "") -> None:
        if reference.shape != candidate.shape:
            raise ModelError(
                f"output '{self.name}' has shape {candidate.shape} in the candidate and "
                f"{reference.shape} in the reference{f' ({origin})' if origin else ''}",
                fix="compare models built from the same network",
            )
        bad_candidate = _nonfinite(candidate)
        bad_reference = _nonfinite(reference)
        if bad_candidate or bad_reference:
            self._nonfinite += int(bad_candidate)
            self._nonfinite_reference += int(bad_reference)
            self._cos.append(0.0)
            self._abs.append(np.inf)
            self._rel.append(np.inf)
            if self.heatmap:
                self._top.append(0.0)
            return
        # NaN compares false with every budget and would pass it: a metric that is not a number
        # (finite float64 inputs can still overflow) counts as its worst value
        cos = cosine_similarity(reference, candidate)
        self._cos.append(cos if not np.isnan(cos) else 0.0)
        abs_err = max_abs_error(reference, candidate)
        self._abs.append(abs_err if not np.isnan(abs_err) else np.inf)
        rel = rel_l2_error(reference, candidate)
        self._rel.append(rel if not np.isnan(rel) else np.inf)
        if self.heatmap:
            top = topk_agreement(reference, candidate, self.topk)
            self._top.append(top if not np.isnan(top) else 0.0)

    def result(self) -> OutputMetrics:
        n = len(self._cos)
        if n == 0:
            raise ModelError(f"no samples were compared for output '{self.name}'")
        return OutputMetrics(
            name=self.name,
            samples=n,
            cosine_mean=float(np.mean(self._cos)),
            cosine_min=float(np.min(self._cos)),
            max_abs_max=float(np.max(self._abs)),
            max_abs_mean=float(np.mean(self._abs)),
            rel_l2_max=float(np.max(self._rel)),
            rel_l2_mean=float(np.mean(self._rel)),
            topk_mean=float(np.mean(self._top)) if self._top else None,
            topk_min=float(np.min(self._top)) if self._top else None,
            topk_k=self.topk if self._top else None,
            nonfinite_samples=self._nonfinite,
            nonfinite_reference_samples=self._nonfinite_reference,
        )


@dataclass(frozen=True)
class AccuracyReport:
    """The comparison of a candidate with the FP32 reference on one dataset."""

    reference: str
    candidate: str
    candidate_kind: str
    data_source: str
    sample_count: int
    outputs: tuple[OutputMetrics, ...]
    timing: Mapping[str, float] = field(default_factory=dict)

    @property
    def rel_l2_max(self) -> float:
        return max(o.rel_l2_max for o in self.outputs)

    @property
    def rel_l2_mean(self) -> float:
        return float(np.mean([o.rel_l2_mean for o in self.outputs]))

    @property
    def cosine_min(self) -> float:
        return min(o.cosine_min for o in self.outputs)

    @property
    def max_abs_max(self) -> float:
        return max(o.max_abs_max for o in self.outputs)

    @property
    def topk_min(self) -> float | None:
        values = [o.topk_min for o in self.outputs if o.topk_min is not None]
        return min(values) if values else None

    def loss(self, metric: str = "rel_l2") -> float:
        """One "lower is better" number: ``rel_l2`` max, ``1 - cosine`` min, ``max_abs`` max, or
        ``1 - topk`` agreement min (0 when no heatmap output)."""
        if metric == "rel_l2":
            return self.rel_l2_max
        if metric == "cosine":
            return 1.0 - self.cosine_min
        if metric == "max_abs":
            return self.max_abs_max
        if metric == "topk":
            t = self.topk_min
            return 0.0 if t is None else 1.0 - t
        raise UsageError(
            f"unknown accuracy metric '{metric}'", fix=f"use {', '.join(LOSS_METRICS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``accuracy`` section of a result (metric names ``accuracy.<...>``)."""
        d: dict[str, Any] = {
            "reference": self.reference,
            "candidate": self.candidate,
            "candidate_kind": self.candidate_kind,
            "data": self.data_source,
            "sample_count": self.sample_count,
            "outputs": {o.name: o.to_dict() for o in self.outputs},
            "cosine": {"min": self.cosine_min},
            "max_abs": {"max": _finite(self.max_abs_max)},
            "rel_l2": {"max": _finite(self.rel_l2_max), "mean": _finite(self.rel_l2_mean)},
        }
        if self.topk_min is not None:
            d["topk_agreement"] = {"min": self.topk_min}
        return d


def candidate_kind(path: str | os.PathLike[str]) -> str:
    """``"tensorrt"`` for engine files, ``"onnx"`` for ONNX models; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt"
    if suffix == ".onnx":
        return "onnx"
    raise UsageError(
        f"cannot tell what kind of model {path} is",
        why=f"its suffix '{suffix}' is neither .onnx nor one of {', '.join(ENGINE_SUFFIXES)}",
        fix="pass an ONNX model (Q/DQ or FP16) or a TensorRT engine",
    )


def _ort(threads: int | None, providers: Sequence[str] | None) -> dict[str, Any]:
    """OnnxRuntimeRunner keywords for ``--ort-threads`` / ``--ort-providers``."""
    return {"intra_op_threads": threads, "providers": list(providers) if providers else None}


def open_runner(
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> Any:
    """A runner (not yet entered) for an ONNX model or a TensorRT engine."""
    require_file(path, what="candidate model")
    if candidate_kind(path) == "tensorrt":
        try:
            from ..backends.tensorrt.runner import TensorRTRunner
        except ImportError as exc:  # a partial install without the TensorRT backend
            raise DependencyMissingError(
                "the TensorRT backend of orinbench is not available",
                why=str(exc),
                fix="reinstall orinbench; run engines on a machine with TensorRT",
            ) from exc
        return TensorRTRunner(path)
    return OnnxRuntimeRunner(path, **_ort(threads, providers))


def adapt_feed(feed: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec]) -> Outputs:
    """Cast float inputs to the runner's float type (an FP16 model with FP16 inputs)."""
    out = dict(feed)
    for spec in inputs:
        arr = out.get(spec.name)
        if arr is None or str(arr.dtype) == spec.dtype:
            continue
        if arr.dtype.kind == "f" and spec.dtype in ("float16", "float32", "float64"):
            out[spec.name] = arr.astype(spec.dtype)
    return out


def _check_outputs(
    reference: Sequence[TensorSpec], candidate: Sequence[TensorSpec], *, name: str
) -> None:
    have = {s.name for s in candidate}
    missing = [s.name for s in reference if s.name not in have]
    if missing:
        raise ModelError(
            f"the candidate {name} lacks output '{missing[0]}' of the reference",
            why=f"its outputs are {', '.join(sorted(have))}",
            fix="compare a candidate built from the same ONNX model as the reference",
        )


def heatmap_outputs(names: Iterable[str], requested: Sequence[str] | None) -> set[str]:
    """The outputs compared by peak agreement: ``requested`` (checked), else by name."""
    names = list(names)
    if requested is None:
        return {n for n in names if is_heatmap_name(n)}
    unknown = [r for r in requested if r not in names]
    if unknown:
        raise UsageError(
            f"--heatmap '{unknown[0]}' is not an output of the reference",
            why=f"its outputs are {', '.join(names)}",
            fix="name one of them",
        )
    return set(requested)


def reference_outputs(
    reference: str | os.PathLike[str],
    dataset: CalibrationDataset,
    *,
    max_samples: int | None = None,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> tuple[list[Outputs], tuple[TensorSpec, ...]]:
    """Run the FP32 reference on every sample once; for comparing many candidates."""
    results: list[Outputs] = []
    with OnnxRuntimeRunner(reference, **_ort(threads, providers)) as runner:
        for feed in dataset.feeds(max_samples):
            results.append(runner.infer(feed))
        return results, tuple(runner.outputs)


def compare_with_reference(
    candidate: str | os.PathLike[str],
    *,
    dataset: CalibrationDataset,
    reference: Sequence[Outputs],
    reference_specs: Sequence[TensorSpec],
    heatmaps: Sequence[str] | None = None,
    topk: int = DEFAULT_TOPK,
    threads: int | None = None,
    reference_name: str = "",
    providers: Sequence[str] | None = None,
) -> AccuracyReport:
    """Compare ``candidate`` with reference outputs made earlier by :func:`reference_outputs`."""
    names = [s.name for s in reference_specs]
    hm = heatmap_outputs(names, heatmaps)
    acc = {n: OutputAccumulator(n, heatmap=n in hm, topk=topk) for n in names}
    started = time.perf_counter()
    with open_runner(candidate, threads=threads, providers=providers) as runner:
        _check_outputs(reference_specs, runner.outputs, name=str(candidate))
        for sample, ref in zip(dataset.samples(len(reference)), reference, strict=False):
            out = runner.infer(adapt_feed(sample.feed, runner.inputs))
            for n in names:
                acc[n].add(ref[n], np.asarray(out[n]), origin=sample.origin)
    return AccuracyReport(
        reference=reference_name,
        candidate=str(candidate),
        candidate_kind=candidate_kind(candidate),
        data_source=dataset.source,
        sample_count=len(reference),
        outputs=tuple(acc[n].result() for n in names),
        timing={"candidate_s": time.perf_counter() - started},
    )


def evaluate_accuracy(
    candidate: str | os.PathLike[str],
    *,
    reference: str | os.PathLike[str],
    data: CalibrationDataset | str | os.PathLike[str],
    max_samples: int | None = None,
    heatmaps: Sequence[str] | None = None,
    topk: int = DEFAULT_TOPK,
    threads: int | None = None,
    progress: Progress | None = None,
    providers: Sequence[str] | None = None,
) -> AccuracyReport:
    """Run the FP32 ``reference`` and ``candidate`` on the same samples and compare the outputs.

    ``data`` is validated against the reference's inputs before anything runs. ``heatmaps`` names
    the outputs compared by top-``topk`` peak agreement (default: outputs named like a heatmap).
    The samples stream through both models; nothing but the metrics is kept.
    """
    if topk < 1:
        raise UsageError(f"--topk must be at least 1, not {topk}", fix="pass e.g. 100")
    kind = candidate_kind(candidate)
    require_file(candidate, what="candidate model")
    ref_model = load_model(reference, load_external_data=False)
    inputs, outputs = io_specs(ref_model)
    t0 = time.perf_counter()
    # accuracy runs sample by sample: samples of a dynamic model may differ in shape
    dataset = open_dataset(data, inputs=inputs, max_samples=max_samples, one_shape=False)
    validate_s = time.perf_counter() - t0 if not isinstance(data, CalibrationDataset) else 0.0
    names = [s.name for s in outputs]
    hm = heatmap_outputs(names, heatmaps)
    acc = {n: OutputAccumulator(n, heatmap=n in hm, topk=topk) for n in names}
    ref_s = cand_s = load_s = 0.0
    count = 0
    total = dataset.count if max_samples is None else min(dataset.count, max_samples)
    with (
        OnnxRuntimeRunner(reference, **_ort(threads, providers)) as ref_runner,
        open_runner(candidate, threads=threads, providers=providers) as cand_runner,
    ):
        _check_outputs(ref_runner.outputs, cand_runner.outputs, name=str(candidate))
        samples = dataset.samples(max_samples)
        while True:
            t = time.perf_counter()
            sample = next(samples, None)
            load_s += time.perf_counter() - t
            if sample is None:
                break
            t = time.perf_counter()
            ref = ref_runner.infer(sample.feed)
            ref_s += time.perf_counter() - t
            t = time.perf_counter()
            cand = cand_runner.infer(adapt_feed(sample.feed, cand_runner.inputs))
            cand_s += time.perf_counter() - t
            for n in names:
                acc[n].add(ref[n], np.asarray(cand[n]), origin=sample.origin)
            count += 1
            if progress is not None:
                progress(count, count / total if total else -1.0)
    return AccuracyReport(
        reference=str(reference),
        candidate=str(candidate),
        candidate_kind=kind,
        data_source=dataset.source,
        sample_count=count,
        outputs=tuple(acc[n].result() for n in names),
        timing={
            "validate_s": validate_s,
            "load_s": load_s,
            "reference_s": ref_s,
            "candidate_s": cand_s,
            "total_s": time.perf_counter() - t0,
        },
    )


def guess_precision(path: str | os.PathLike[str]) -> str:
    """``int8`` for a Q/DQ model, ``fp16`` for an FP16 one, else ``fp32``
    (:func:`orinbench.model.identity.guess_precision`); ``tensorrt`` for an engine (its
    precision lives in the engine's sidecar)."""
    if candidate_kind(path) == "tensorrt":
        return "tensorrt"
    return _guess_onnx_precision(path)


def accuracy_result(
    report: AccuracyReport,
    *,
    precision: str | None = None,
    environment: Any = None,
) -> Result:
    """An orinbench Result that carries ``report`` in its ``accuracy`` section.

    It has no latency samples or statistics: accuracy results feed the gate's ``accuracy.*``
    targets. ``environment`` defaults to this host with the candidate's backend.
    """
    from ..bench.assemble import utc_now
    from ..telemetry.host import host_environment

    cand = report.candidate
    kind = report.candidate_kind
    if kind == "onnx":
        from ..backends.onnxruntime import ort_version

        inputs, outputs = io_specs(load_model(cand, load_external_data=False))
        sha, backend, version = artifact_sha256(cand), "onnxruntime", ort_version()
    else:
        ref_inputs, ref_outputs = io_specs(load_model(report.reference, load_external_data=False))
        inputs, outputs = ref_inputs, ref_outputs
        sha, backend, version = artifact_sha256(cand), "tensorrt", _trt_version()
    env = environment or host_environment(backend=backend, backend_version=version)
    return Result(
        tool_version=__version__,
        created_utc=utc_now(),
        environment=env,
        model=ModelRef(path=cand, sha256=sha, inputs=inputs, outputs=outputs, name=Path(cand).stem),
        config=RunConfig(
            backend=backend,
            precision=precision or guess_precision(cand),
            input_source=f"dataset:{report.data_source}",
            extra={"command": "accuracy", "reference": report.reference},
        ),
        samples={},
        stats={},
        throughput={},
        stop_reason="dataset exhausted",
        accuracy=report.to_dict(),
        extra={"accuracy_timing": dict(report.timing)},
    )


def _trt_version() -> str:
    from .. import _lazy

    if not _lazy.is_available("tensorrt"):
        return "unavailable"
    try:
        return str(_lazy.tensorrt().__version__)
    except Exception:  # a broken TensorRT install must not stop the report
        return "unavailable"
