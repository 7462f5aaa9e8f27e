"""The precision decision: which variant meets the targets with the least energy, and why not the
others. Pure: it works on :class:`VariantRow` figures, so it can be tested on rows of known shape.

Rule (docs/decide.md):

1. A variant is **eligible** when it meets every target of the targets file (``gate``'s
   :func:`~orinbench.gate.evaluate.check_targets` on its result; a target on a metric the variant
   lacks, such as ``power.mean_w`` without a power source, is not met). Without an accuracy target
   in the file, the default accuracy budget ``accuracy.loss_pct <= 1.0`` applies
   (:data:`DEFAULT_MAX_LOSS_PCT`), so that a variant that is fast because it is wrong is not chosen.
2. Among the eligible variants the one with the **least energy per inference**
   (``energy.mj_per_inference``) is chosen when every eligible variant has it; when power was
   not measured for some of them, the one with the **lowest P99 latency**. Ties go to the lower
   accuracy loss, then to the lower P50. When ranking by latency, a P99 within the measurement
   noise of the lowest one is a tie: two variants tie when the distribution-free 95 % confidence
   intervals of their P99 overlap (both must have one; a run too short for a P99 interval is
   ranked on the point estimate). So a lossy variant is not chosen for a speed-up that the
   measurement cannot tell from noise.
3. Every other variant gets a sentence saying why it lost: the targets it misses (with how much
   faster or more frugal it would have been), or how much more energy / latency it needs. Facts a
   user asks about are added: an INT8 variant no faster than FP16, DLA layers falling back to
   the GPU, reformat layers.

**Accuracy loss** of a variant is the largest relative L2 error of any output over the samples,
against the FP32 ONNX model run in ONNX Runtime on the same inputs, in percent:
``100 * max over outputs o and samples s of |y_o,s - r_o,s|_2 / |r_o,s|_2`` (the ``rel_l2.max``
of :mod:`orinbench.accuracy.compare`). It is ``accuracy.loss_pct`` in the variant's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..gate.evaluate import check_targets
from ..gate.targets import Target, Targets
from ..results.schema import Result

#: accuracy budget applied when the targets file has no accuracy target (percent)
DEFAULT_MAX_LOSS_PCT = 1.0
LOSS_METRIC = "accuracy.loss_pct"
LOSS_DEFINITION = (
    "100 * max over outputs and samples of the relative L2 error |y - y_fp32| / |y_fp32| "
    "against the FP32 ONNX model in ONNX Runtime"
)
RANK_ENERGY = "energy"
RANK_LATENCY = "latency"


@dataclass(frozen=True)
class VariantRow:
    """The figures of one variant, as the decision and the table use them."""

    name: str
    label: str
    backend: str
    precision: str
    device: str
    p50_ms: float
    p99_ms: float
    fps: float
    size_bytes: int
    power_w: float | None = None
    energy_mj: float | None = None
    accuracy_loss_pct: float | None = None
    layers_precision: Mapping[str, int] | None = None
    layers_device: Mapping[str, int] | None = None
    reformat_layers: int | None = None
    dla_fallback_layers: int | None = None
    network_layers: int | None = None
    #: a DLA build whose layers mostly fell back (or none landed on the DLA): GPU figures
    dla_mostly_gpu: bool | None = None
    failed_targets: tuple[str, ...] = ()
    accuracy_failed: tuple[tuple[float, float], ...] = ()
    repeat: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: distribution-free 95 % CI of the P99 latency (ms), None when the run was too short
    p99_ci: tuple[float, float] | None = None

    @property
    def eligible(self) -> bool:
        return not self.failed_targets

    def to_dict(self) -> dict[str, Any]:
        """One row of ``Result.extra['decide']['rows']``: flat values for the reports."""

        def counts(d: Mapping[str, int] | None) -> str | None:
            return " ".join(f"{k}:{v}" for k, v in d.items()) if d else None

        return {
            "variant": self.label,
            "backend": self.backend,
            "precision": self.precision,
            "device": self.device,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "fps": self.fps,
            "power_w": self.power_w,
            "energy_mj": self.energy_mj,
            "accuracy_loss_pct": self.accuracy_loss_pct,
            "size_bytes": self.size_bytes,
            "layers_precision": counts(self.layers_precision),
            "layers_device": counts(self.layers_device),
            "reformat_layers": self.reformat_layers,
            "dla_fallback_layers": self.dla_fallback_layers,
            "network_layers": self.network_layers,
            "dla_mostly_gpu": self.dla_mostly_gpu,
            "meets_targets": self.eligible,
            "failed_targets": "; ".join(self.failed_targets) or None,
        }


def effective_targets(targets: Targets | None, *, max_loss_pct: float | None) -> Targets:
    """The targets file plus the default accuracy budget when it has no accuracy target."""
    base = targets if targets is not None else Targets(source="<none>")
    if max_loss_pct is None or any(t.metric.startswith("accuracy.") for t in base.targets):
        return base
    extra = Target(metric=LOSS_METRIC, op="<=", threshold=float(max_loss_pct))
    return Targets(targets=(*base.targets, extra), tolerances=base.tolerances, source=base.source)


def target_failures(
    result: Result, targets: Targets
) -> tuple[list[str], list[tuple[float, float]]]:
    """Texts of the targets ``result`` misses, and (threshold, value) of the accuracy-loss ones."""
    texts: list[str] = []
    accuracy: list[tuple[float, float]] = []
    for v in check_targets(result, targets):
        if v.status == "pass":
            continue
        if v.value is None:
            texts.append(f"{v.metric} not measured")
            continue
        texts.append(f"{v.metric} = {v.value:.4g} (target {v.op} {v.threshold:g})")
        if v.metric == LOSS_METRIC and v.threshold is not None:
            accuracy.append((float(v.threshold), float(v.value)))
    return texts, accuracy


@dataclass(frozen=True)
class Decision:
    """The chosen variant (None when none is eligible), the ranking used, and the reasons."""

    rows: tuple[VariantRow, ...]
    chosen: str | None
    ranked_by: str
    summary: str
    reasons: Mapping[str, str]
    observations: tuple[str, ...] = ()

    def row(self, name: str) -> VariantRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.row(self.chosen).label if self.chosen else None,
            "chosen_variant": self.chosen,
            "ranked_by": self.ranked_by,
            "summary": self.summary,
            "reasons": {self.row(k).label: v for k, v in self.reasons.items()},
            "observations": list(self.observations),
            "accuracy_loss": LOSS_DEFINITION,
            "rows": [{**r.to_dict(), "chosen": r.name == self.chosen} for r in self.rows],
        }


def _pct_less(a: float, b: float) -> float:
    """How much smaller ``a`` is than ``b``, in percent of ``b``."""
    return 100.0 * (b - a) / b if b else 0.0


def p99_indistinguishable(a: VariantRow, b: VariantRow) -> bool:
    """True when both P99 confidence intervals exist and overlap: the difference is noise."""
    if a.p99_ci is None or b.p99_ci is None:
        return False
    return a.p99_ci[0] <= b.p99_ci[1] and b.p99_ci[0] <= a.p99_ci[1]


def _lose_sentence(r: VariantRow, c: VariantRow | None, ranked_by: str) -> str:
    if not r.eligible:
        if r.accuracy_failed and len(r.accuracy_failed) == len(r.failed_targets):
            limit, loss = r.accuracy_failed[0]
            miss = f"loses {loss:.1f} % accuracy (limit {limit:g} %)"
        else:
            miss = "misses " + "; ".join(r.failed_targets)
        if c is not None:
            if (
                ranked_by == RANK_ENERGY
                and r.energy_mj is not None
                and c.energy_mj is not None
                and r.energy_mj < c.energy_mj
            ):
                less = _pct_less(r.energy_mj, c.energy_mj)
                return (
                    f"{r.label} needs {less:.0f} % less energy per inference than {c.label} "
                    f"but {miss}"
                )
            if r.p99_ms < c.p99_ms:
                return (
                    f"{r.label} is {_pct_less(r.p99_ms, c.p99_ms):.0f} % faster than "
                    f"{c.label} (P99) but {miss}"
                )
        return f"{r.label} {miss}"
    assert c is not None
    if ranked_by == RANK_ENERGY and r.energy_mj is not None and c.energy_mj is not None:
        more = 100.0 * (r.energy_mj - c.energy_mj) / c.energy_mj if c.energy_mj else 0.0
        return (
            f"{r.label} meets the targets but needs {more:.0f} % more energy per inference "
            f"than {c.label} ({r.energy_mj:.3g} vs {c.energy_mj:.3g} mJ)"
        )
    if ranked_by == RANK_LATENCY and p99_indistinguishable(r, c):
        loss_r = r.accuracy_loss_pct if r.accuracy_loss_pct is not None else float("nan")
        loss_c = c.accuracy_loss_pct if c.accuracy_loss_pct is not None else float("nan")
        return (
            f"{r.label} meets the targets and its P99 ({r.p99_ms:.3g} ms) is within the "
            f"measurement noise of {c.label}'s ({c.p99_ms:.3g} ms; the 95 % intervals overlap), "
            f"so the tie goes to {c.label}, which loses less accuracy ({loss_c:.2f} vs "
            f"{loss_r:.2f} %) or has the lower P50"
        )
    more = 100.0 * (r.p99_ms - c.p99_ms) / c.p99_ms if c.p99_ms else 0.0
    return (
        f"{r.label} meets the targets but its P99 is {more:.0f} % higher than {c.label}'s "
        f"({r.p99_ms:.3g} vs {c.p99_ms:.3g} ms)"
    )


def _observations(rows: Sequence[VariantRow]) -> list[str]:
    out: list[str] = []
    by_precision: dict[tuple[str, str], VariantRow] = {(r.device, r.precision): r for r in rows}
    for (device, precision), r in by_precision.items():
        if precision != "int8":
            continue
        fp16 = by_precision.get((device, "fp16"))
        if fp16 is not None and r.p99_ms >= fp16.p99_ms:
            out.append(
                f"{r.label} is no faster than {fp16.label} (P99 {r.p99_ms:.3g} vs "
                f"{fp16.p99_ms:.3g} ms)"
            )
    for r in rows:
        if r.dla_mostly_gpu:
            out.append(
                f"{r.label} runs mostly on the GPU ({r.dla_fallback_layers} of "
                f"{r.network_layers} layers fell back, or none landed on the DLA): its figures "
                "are GPU figures, not DLA ones"
            )
        elif r.dla_fallback_layers and r.network_layers:
            out.append(
                f"{r.label} falls back to the GPU on {r.dla_fallback_layers} of "
                f"{r.network_layers} layers"
            )
        elif r.device.startswith("DLA") and r.layers_device and "GPU" in r.layers_device:
            total = sum(r.layers_device.values())
            out.append(
                f"{r.label} runs {r.layers_device['GPU']} of {total} engine layers on the GPU"
            )
        if r.reformat_layers:
            out.append(f"{r.label} has {r.reformat_layers} reformat layer(s)")
    return out


def decide(rows: Sequence[VariantRow]) -> Decision:
    """Choose among ``rows`` by the rule in the module docstring."""
    if not rows:
        raise ValueError("no variants to decide between")
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names repeat: {names}")
    eligible = [r for r in rows if r.eligible]
    ranked_by = (
        RANK_ENERGY if eligible and all(r.energy_mj is not None for r in eligible) else RANK_LATENCY
    )

    def key(r: VariantRow) -> tuple[float, float, float]:
        primary = r.energy_mj if ranked_by == RANK_ENERGY and r.energy_mj is not None else r.p99_ms
        loss = r.accuracy_loss_pct if r.accuracy_loss_pct is not None else float("inf")
        return (primary, loss, r.p50_ms)

    chosen = min(eligible, key=key) if eligible else None
    fastest = chosen
    if chosen is not None and ranked_by == RANK_LATENCY:
        tied = [r for r in eligible if r is chosen or p99_indistinguishable(r, chosen)]
        chosen = min(tied, key=lambda r: key(r)[1:])
    reasons: dict[str, str] = {}
    for r in rows:
        if chosen is not None and r.name == chosen.name:
            continue
        reasons[r.name] = _lose_sentence(r, chosen, ranked_by)
    if chosen is None:
        summary = "No variant meets the targets."
    elif ranked_by == RANK_ENERGY:
        summary = (
            f"{chosen.label} is chosen: it meets the targets with the least energy per inference "
            f"({chosen.energy_mj:.3g} mJ, P99 {chosen.p99_ms:.3g} ms)."
        )
    elif fastest is not None and fastest.name != chosen.name:
        summary = (
            f"{chosen.label} is chosen: it meets the targets, and {fastest.label}'s lower P99 "
            f"({fastest.p99_ms:.3g} vs {chosen.p99_ms:.3g} ms) is within the measurement noise, "
            f"so the lower accuracy loss decides."
        )
    else:
        why = "power was not measured" if any(r.energy_mj is None for r in eligible) else ""
        summary = (
            f"{chosen.label} is chosen: it meets the targets with the lowest P99 latency "
            f"({chosen.p99_ms:.3g} ms)" + (f"; {why}, so latency decides." if why else ".")
        )
    return Decision(
        rows=tuple(rows),
        chosen=chosen.name if chosen else None,
        ranked_by=ranked_by,
        summary=summary,
        reasons=reasons,
        observations=tuple(_observations(rows)),
    )
