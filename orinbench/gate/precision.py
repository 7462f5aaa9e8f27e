"""Is a baseline precise enough to gate against? Its percentiles' own noise against the tolerance.

A baseline is measured once and then held against every new result, so its sampling noise never
averages out: it is a floor under every comparison. When a baseline's P99 is known only to
+-4.5 % (one 10 s run of 500 iterations at 10 % CV), a result drawn from the very same law lands
beyond a 5 % tolerance by chance in about 2 % of runs, and no rule can tell those runs from a
real regression (benchmarks/gate_power.py measures it). So a baseline must hold, for each gated
percentile, :func:`~orinbench.bench.stats.min_tail_samples` samples (10 beyond it on average)
and a 95 % distribution-free interval (the one ``bench --until-ci`` watches) within
:data:`PRECISION_SHARE` of that metric's tolerance each side; ``baseline record`` refuses one
that does not, and ``gate`` / ``bench --until-decided`` warn about one stored anyway.

Only percentile metrics are checked: means and fps are judged by rank tests on all samples,
whose precision grows with the sample count far faster than a tail percentile's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..bench.stats import DEFAULT_CONFIDENCE, TAIL_SAMPLES, ci_relative_halfwidth, min_tail_samples
from ..results.schema import Result
from .compare import _PCT_RE, _raw_series, _split_series, compared_metrics, default_tolerance
from .verdict import ReportWarning

#: the largest share of a metric's tolerance that its baseline's 95 % half-width may take:
#: +-2.5 % for the default 5 %. The distribution-free interval of a P99 from 500 samples at 10 %
#: CV is about +-4.5 % (median; up to +-10 %), from 1500 samples +-2.1 %. Against one 10 s
#: baseline, 1.8 % of same-speed 10 s runs fail the fixed gate at CV 10 %; against baselines
#: that pass this rule, at most 0.8 % in any simulated setting
#: (benchmarks/results/gate_power-cpu2.txt, gate_power-baseline10-cpu2.txt).
PRECISION_SHARE = 0.5


@dataclass(frozen=True)
class BaselinePrecision:
    """How well a baseline knows one gated percentile, against that metric's tolerance."""

    metric: str
    percentile: float  # 99 for latency.p99_ms
    samples: int  # raw samples of its series (0: none kept)
    halfwidth: float | None  # relative half-width of the 95 % interval; None: no interval
    tolerance: float  # fraction

    @property
    def limit(self) -> float:
        return PRECISION_SHARE * self.tolerance

    @property
    def min_samples(self) -> int:
        """Below this count the interval's width is not trusted (:func:`min_tail_samples`)."""
        return min_tail_samples(self.percentile / 100.0)

    @property
    def precise(self) -> bool:
        return (
            self.samples >= self.min_samples
            and self.halfwidth is not None
            and self.halfwidth <= self.limit
        )

    def stop_rule(self) -> str:
        """A ``bench --until-ci`` rule whose runs pass this check (a fifth below the limit, so
        that the interval of the recorded run, which can differ slightly, still fits)."""
        target = float(f"{self.limit * 0.8 * 100:.2g}")
        return f"p{self.percentile:g}:{target:g}%"

    def describe(self) -> str:
        if self.samples == 0:
            known = "has no raw samples, so no comparison against it can be tested"
        elif self.samples < self.min_samples:
            known = (
                f"rests on {self.samples} samples, fewer than the {self.min_samples} that put "
                f"{TAIL_SAMPLES} beyond it on average"
            )
        elif self.halfwidth is None:
            known = f"has no {DEFAULT_CONFIDENCE:.0%} interval ({self.samples} samples)"
        else:
            known = (
                f"is known only to +-{self.halfwidth:.1%} ({DEFAULT_CONFIDENCE:.0%}, "
                f"{self.samples} samples)"
            )
        return (
            f"{self.metric} {known}; gating its {_pct(self.tolerance)} tolerance needs "
            f"+-{_pct(self.limit)} or better"
        )


def baseline_precision(
    baseline: Result,
    *,
    tolerances: Mapping[str, float] | None = None,
    metrics: Iterable[str] | None = None,
) -> list[BaselinePrecision]:
    """One entry per gated percentile metric of ``baseline`` (the metrics :func:`compare` would
    judge, with the same tolerances)."""
    tolerances = dict(tolerances or {})
    out = []
    for m in compared_metrics(baseline, metrics=metrics, tolerances=tolerances):
        split = _split_series(m)
        if split is None:
            continue
        series, stat = split
        pct = _PCT_RE.match(stat)
        if pct is None:
            continue
        q = float(pct.group(1).replace("_", "."))
        raw = _raw_series(baseline, series)
        tol = tolerances.get(m, default_tolerance(m))
        if raw is None:  # none kept, or none finite (_raw_series never returns an empty array)
            out.append(BaselinePrecision(m, q, 0, None, tol))
            continue
        hw = ci_relative_halfwidth(raw, q, confidence=DEFAULT_CONFIDENCE)
        out.append(BaselinePrecision(m, q, int(raw.size), hw, tol))
    return out


def imprecise(entries: Iterable[BaselinePrecision]) -> list[BaselinePrecision]:
    """The entries that fail the precision rule."""
    return [e for e in entries if not e.precise]


def precision_warnings(
    baseline: Result,
    *,
    tolerances: Mapping[str, float] | None = None,
    metrics: Iterable[str] | None = None,
) -> list[ReportWarning]:
    """A ``short-baseline`` warning per gated percentile the baseline knows too imprecisely
    (a baseline recorded with ``--allow-imprecise``, or before ``baseline record`` checked)."""
    return [
        ReportWarning(
            source="baseline",
            code="short-baseline",
            message=f"{e.describe()}: a run as fast as the baseline can fail this gate by chance; "
            f"record a longer or quieter baseline (bench --until-ci {e.stop_rule()} with the "
            "clocks locked)",
        )
        for e in imprecise(baseline_precision(baseline, tolerances=tolerances, metrics=metrics))
    ]


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"
