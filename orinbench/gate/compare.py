"""Compare a result with a baseline: environment comparability, then tolerance AND significance.

Rules (docs/gate.md has the full table):

* Environments must match on :data:`COMPARABILITY_KEYS`, else :class:`IncomparableError` (exit 3),
  or only a warning with ``allow_env_mismatch``. The model's sha256 and the engine hash are
  deliberately not compared: a changed model is what a regression test is for.
* Each compared metric has a tolerance (:func:`default_tolerance`, or the ``[tolerance]`` table)
  and a direction (:func:`direction`). ``delta = value / baseline - 1``.
* Within tolerance -> ``unchanged``. Beyond tolerance -> ``regressed`` / ``improved`` only when a
  test on the raw samples says so, else ``inconclusive`` (never a pass):

  - percentile metrics (``<series>.p99_ms``): the bootstrap CI of ``P_q(result) / P_q(baseline)``
    must lie entirely above 1 (or below 1): the change is real, and the point estimate says it
    is beyond the tolerance;
  - other statistics of a series (``mean_ms``) and ``throughput.fps``: a two-sided Mann–Whitney
    test on the raw samples (the latency samples for fps) with p < ``alpha``, in the same
    direction as the change;
  - ``power.*`` when both results keep raw power samples: Mann–Whitney on those samples.

* Too few samples for the percentile, or raw samples missing where a test needs them ->
  ``inconclusive`` whatever the point estimate. Metrics with no test at all (``energy.*``, power
  without raw samples) are judged on the point estimate: within tolerance ``unchanged``, beyond it
  ``inconclusive``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..bench.stats import (
    DEFAULT_CONFIDENCE,
    bootstrap_ratio_ci,
    mann_whitney_u,
    min_samples_for_percentile,
)
from ..errors import IncomparableError
from ..results.schema import HOST_LATENCY, Result
from .verdict import MetricVerdict, Status

Direction = Literal["lower", "higher"]

#: environment keys that must be equal for a comparison (None == None counts as equal)
COMPARABILITY_KEYS: tuple[str, ...] = (
    "device.module",
    "device.module_part",
    "device.jetpack",
    "device.l4t",
    "device.tensorrt",
    "device.power_mode",
    "backend",
    "precision",
)

#: metrics compared against a baseline by default, when the baseline has them
DEFAULT_BASELINE_METRICS: tuple[str, ...] = (
    "latency.p50_ms",
    "latency.p95_ms",
    "latency.p99_ms",
    "gpu_compute.p50_ms",
    "gpu_compute.p99_ms",
    "throughput.fps",
    "power.mean_w",  # only when the baseline keeps raw power samples
)

#: default tolerances, as fractions, by metric family
LATENCY_TOLERANCE = 0.05
THROUGHPUT_TOLERANCE = 0.05
POWER_TOLERANCE = 0.10
ENERGY_TOLERANCE = 0.10
OTHER_TOLERANCE = 0.05
#: significance level of the tests (the bootstrap interval has confidence 1 - alpha)
DEFAULT_ALPHA = 1.0 - DEFAULT_CONFIDENCE
#: the Mann–Whitney normal approximation is used only with at least this many samples per side
MIN_TEST_SAMPLES = 10

_PCT_RE = re.compile(r"^p(\d+(?:_\d+)?)_ms$")
_POWER_SAMPLE_KEYS = ("samples_w", "trace_w")
_POWER_ITEM_KEYS = ("total_w", "w", "power_w", "watts")


# -------------------------------------------------------------------------------------------
# environment


def environment_values(result: Result) -> dict[str, Any]:
    """The :data:`COMPARABILITY_KEYS` of ``result`` (None where unknown)."""
    dev = dict(result.environment.device or {})
    module = dev.get("module", dev.get("model"))
    return {
        "device.module": module,
        # the devkit's device-tree model string does not tell AGX Orin 32GB from 64GB; the part does
        "device.module_part": dev.get("module_part"),
        "device.jetpack": dev.get("jetpack"),
        "device.l4t": dev.get("l4t"),
        "device.tensorrt": dev.get("tensorrt"),
        "device.power_mode": dev.get("power_mode"),
        "backend": result.environment.backend or result.config.backend or None,
        "precision": result.config.precision or None,
    }


def environment_differences(result: Result, baseline: Result) -> list[tuple[str, Any, Any]]:
    """``(key, result value, baseline value)`` for each comparability key that differs."""
    a, b = environment_values(result), environment_values(baseline)
    return [(k, a[k], b[k]) for k in COMPARABILITY_KEYS if _norm(a[k]) != _norm(b[k])]


def check_comparable(
    result: Result, baseline: Result, *, allow_env_mismatch: bool = False
) -> tuple[str, ...]:
    """Raise IncomparableError on differing environments; with ``allow_env_mismatch`` return
    one warning line per difference instead."""
    diffs = environment_differences(result, baseline)
    lines = tuple(f"{k}: result {a!r} vs baseline {b!r}" for k, a, b in diffs)
    if diffs and not allow_env_mismatch:
        raise IncomparableError(
            "the result and the baseline come from different environments",
            why="; ".join(lines),
            fix="compare against a baseline recorded on the same setup "
            "('orinbench baseline record'), or pass --allow-env-mismatch to compare anyway",
        )
    return tuple(f"compared despite differing {line}" for line in lines)


def _norm(v: Any) -> Any:
    # "6.0" from one source and 6.0 from another are the same version
    return None if v is None else str(v).strip()


# -------------------------------------------------------------------------------------------
# metric properties


def direction(metric: str) -> Direction | None:
    """Whether a smaller (``lower``) or larger (``higher``) value is better; None if unknown."""
    leaf = metric.rsplit(".", 1)[-1]
    if "fps" in leaf:
        return "higher"
    if metric.startswith(("power.", "energy.")):
        return "lower"
    if leaf.endswith(("_ms", "_us", "_ns")) or leaf == "cv":
        return "lower"
    return None


def default_tolerance(metric: str) -> float:
    """5 % for latency and throughput, 10 % for power and energy, 5 % otherwise."""
    if metric.startswith("throughput."):
        return THROUGHPUT_TOLERANCE
    if metric.startswith("power."):
        return POWER_TOLERANCE
    if metric.startswith("energy."):
        return ENERGY_TOLERANCE
    if metric.endswith("_ms"):
        return LATENCY_TOLERANCE
    return OTHER_TOLERANCE


def _split_series(metric: str) -> tuple[str, str] | None:
    """``latency.p99_ms`` -> (``latency``, ``p99_ms``); ``stages.a.latency.p99_ms`` too."""
    parts = metric.split(".")
    if parts[0] == "stages" and len(parts) == 4:
        return ".".join(parts[:3]), parts[3]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _raw_series(res: Result, series: str) -> npt.NDArray[np.float64] | None:
    raw: Any = None
    if series.startswith("stages."):
        _, stage, name = series.split(".")
        st = (res.stages or {}).get(stage) or {}
        samples = st.get("samples") if isinstance(st, Mapping) else None
        if isinstance(samples, Mapping):
            raw = samples.get(name)
        elif name == HOST_LATENCY:
            raw = samples
    else:
        raw = res.samples.get(series)
    return _numbers(raw)


def _power_samples(res: Result) -> npt.NDArray[np.float64] | None:
    """Raw power readings (W) if the result keeps them.

    Read from ``power.samples_w`` (a list), or ``power.trace``: a mapping of columns
    (``{"t_s": [...], "total_w": [...]}``), a list of ``[t, w]`` pairs, of mappings
    (``{"total_w": ...}``) or of numbers.
    """
    p = res.power or {}
    for key in _POWER_SAMPLE_KEYS:
        arr = _numbers(p.get(key))
        if arr is not None:
            return arr
    trace = p.get("trace")
    if isinstance(trace, Mapping):
        for k in _POWER_ITEM_KEYS:
            if k in trace:
                return _numbers(trace[k])
        return None
    if isinstance(trace, Sequence) and trace and not isinstance(trace, str):
        first = trace[0]
        if isinstance(first, Mapping):
            for k in _POWER_ITEM_KEYS:
                if k in first:
                    return _numbers([item.get(k) for item in trace if isinstance(item, Mapping)])
            return None
        if isinstance(first, Sequence) and len(first) == 2:
            return _numbers([item[1] for item in trace])
        return _numbers(trace)
    return None


def _numbers(raw: Any) -> npt.NDArray[np.float64] | None:
    if raw is None or isinstance(raw, (str, bytes, Mapping)):
        return None
    try:
        arr = np.asarray(raw, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    arr = arr[np.isfinite(arr)]
    return arr if arr.size else None


# -------------------------------------------------------------------------------------------
# comparison


def compare(
    result: Result,
    baseline: Result,
    *,
    tolerances: Mapping[str, float] | None = None,
    metrics: Iterable[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[MetricVerdict]:
    """Baseline verdicts for each compared metric (environments are not checked here).

    Compared: ``metrics`` if given, else :data:`DEFAULT_BASELINE_METRICS` that the baseline has,
    plus every metric named in ``tolerances`` (fractions, ``{"latency.p99_ms": 0.05}``), which also
    override :func:`default_tolerance`. A metric the result lacks, or an explicitly named one the
    baseline lacks, is an ``error`` verdict.
    """
    tolerances = dict(tolerances or {})
    r_metrics = result.metrics()
    b_metrics = baseline.metrics()
    names = compared_metrics(baseline, metrics=metrics, tolerances=tolerances)

    ctx = _Context(result, baseline, alpha=alpha, n_resamples=n_resamples, seed=seed)
    out = []
    for m in names:
        tol = tolerances.get(m, default_tolerance(m))
        out.append(ctx.verdict(m, r_metrics.get(m), b_metrics.get(m), tol))
    return out


def compared_metrics(
    baseline: Result,
    *,
    metrics: Iterable[str] | None = None,
    tolerances: Mapping[str, float] | None = None,
) -> list[str]:
    """The metrics :func:`compare` judges: ``metrics`` if given, else the
    :data:`DEFAULT_BASELINE_METRICS` the baseline has, then every metric named in ``tolerances``."""
    if metrics is not None:
        names = list(dict.fromkeys(metrics))
    else:
        b_metrics = baseline.metrics()
        names = []
        for m in DEFAULT_BASELINE_METRICS:
            if m not in b_metrics:
                continue
            if m.startswith("power.") and _power_samples(baseline) is None:
                continue  # a baseline without raw power samples could not support a verdict
            names.append(m)
    names += [m for m in (tolerances or {}) if m not in names]
    return names


class _Context:
    """Both results and the test settings, while their metrics are judged one by one."""

    def __init__(
        self, result: Result, baseline: Result, *, alpha: float, n_resamples: int, seed: int
    ) -> None:
        self.result = result
        self.baseline = baseline
        self.alpha = alpha
        self.n_resamples = n_resamples
        self.seed = seed

    def verdict(
        self, metric: str, value: float | None, base: float | None, tol: float
    ) -> MetricVerdict:
        def v(status: Status, message: str, **kw: Any) -> MetricVerdict:
            return MetricVerdict(
                metric=metric,
                kind="baseline",
                status=status,
                value=value,
                baseline_value=base,
                tolerance_pct=tol * 100.0,
                message=message,
                **kw,
            )

        if base is None:
            return v(
                "error",
                "the baseline has no such metric; record a new baseline or "
                "remove it from [tolerance]",
            )
        if value is None:
            return v(
                "error",
                "the result lacks this metric, which the baseline has; "
                "re-run with the same options (power source, stages) as the baseline",
            )
        d = direction(metric)
        if d is None:
            return v(
                "error",
                "no known better direction for this metric; gate it with an "
                "absolute target in [targets] instead",
            )
        if base == 0.0:
            if value == 0.0:
                return v("unchanged", "0 in both")
            return v("inconclusive", "the baseline value is 0, so no relative change exists")

        delta = value / base - 1.0
        worse = delta > tol if d == "lower" else delta < -tol
        better = delta < -tol if d == "lower" else delta > tol
        kw: dict[str, Any] = {"delta_pct": delta * 100.0}
        change = f"{abs(delta):.1%} {'higher' if delta > 0 else 'lower'} than the baseline"

        test = self._test(metric)
        if test.kind == "missing":
            return v("inconclusive", test.reason, **kw)
        kw.update(p_value=test.p_value, ci=test.ci)
        if test.kind == "insufficient":
            return v("inconclusive", test.reason, **kw)
        if not worse and not better:
            return v("unchanged", f"{change}, within the {_tol(tol)} tolerance", **kw)
        label: Status = "regressed" if worse else "improved"
        if test.kind == "none":
            return v(
                "inconclusive",
                f"{change}, beyond the {_tol(tol)} tolerance, but this "
                "metric has no raw samples to test significance; check it with a target",
                **kw,
            )
        larger = delta > 0
        significant, evidence = test.significant(larger=larger, alpha=self.alpha)
        if significant:
            return v(label, f"{change} (tolerance {_tol(tol)}); {evidence}", **kw)
        return v(
            "inconclusive",
            f"{change}, beyond the {_tol(tol)} tolerance but not "
            f"significant: {evidence}; collect more samples or reduce noise",
            **kw,
        )

    # -- tests ---------------------------------------------------------------------------------

    def _test(self, metric: str) -> _Test:
        if metric.startswith("throughput.") and direction(metric) == "higher":
            return self._rank_test(HOST_LATENCY, HOST_LATENCY, fps=True)
        if metric.startswith("power."):
            a, b = _power_samples(self.baseline), _power_samples(self.result)
            if a is None or b is None:
                return _Test("none")
            return self._mw(a, b, "power samples")
        if metric.startswith(("energy.", "accuracy.", "soak.")):
            return _Test("none")
        split = _split_series(metric)
        if split is None:
            return _Test("none")
        series, stat = split
        m = _PCT_RE.match(stat)
        if m:
            return self._percentile_test(series, float(m.group(1).replace("_", ".")))
        if stat == "mean_ms":
            return self._rank_test(series, series)
        return _Test("none")

    def _samples(self, series: str) -> tuple[Any, Any, _Test | None]:
        a, b = _raw_series(self.baseline, series), _raw_series(self.result, series)
        missing = [name for name, x in (("baseline", a), ("result", b)) if x is None]
        if missing:
            return (
                a,
                b,
                _Test(
                    "missing",
                    reason=f"the {' and the '.join(missing)} lack raw '{series}' samples, so "
                    "significance cannot be tested; keep raw samples in result files",
                ),
            )
        return a, b, None

    def _percentile_test(self, series: str, q: float) -> _Test:
        a, b, bad = self._samples(series)
        if bad is not None:
            return bad
        need = min_samples_for_percentile(q / 100.0, 1.0 - self.alpha)
        short = [
            f"{name} has {x.size}" for name, x in (("baseline", a), ("result", b)) if x.size < need
        ]
        if short:
            return _Test(
                "insufficient",
                reason=f"too few samples for P{q:g}: {' and '.join(short)}, it needs {need} "
                f"for a {1 - self.alpha:.0%} interval; run longer",
            )
        mw = mann_whitney_u(a, b)
        ci = bootstrap_ratio_ci(
            a, b, q=q, n_resamples=self.n_resamples, confidence=1.0 - self.alpha, seed=self.seed
        )
        return _Test("ci", p_value=mw.p_value, ci=ci)

    def _rank_test(self, series_a: str, series_b: str, *, fps: bool = False) -> _Test:
        a, b, bad = self._samples(series_a)
        if bad is not None:
            return bad
        return self._mw(a, b, f"'{series_a}' samples", invert=fps)

    def _mw(self, a: Any, b: Any, what: str, *, invert: bool = False) -> _Test:
        if min(a.size, b.size) < MIN_TEST_SAMPLES:
            return _Test(
                "insufficient",
                reason=f"too few {what} for a Mann–Whitney test ({a.size} baseline, "
                f"{b.size} result; it needs {MIN_TEST_SAMPLES} each)",
            )
        mw = mann_whitney_u(a, b)
        return _Test("mw", p_value=mw.p_value, effect=mw.effect, invert=invert, what=what)


def _tol(tol: float) -> str:
    return f"{tol * 100:.3g}%"


class _Test:
    """The outcome of the significance test of one metric."""

    def __init__(
        self,
        kind: str,
        *,
        reason: str = "",
        p_value: float | None = None,
        ci: tuple[float, float] | None = None,
        effect: float | None = None,
        invert: bool = False,
        what: str = "",
    ) -> None:
        self.kind = kind  # missing | insufficient | none | ci | mw
        self.reason = reason
        self.p_value = p_value
        self.ci = ci
        self.effect = effect
        self.invert = invert  # fps: a larger metric means smaller latency samples
        self.what = what

    def significant(self, *, larger: bool, alpha: float) -> tuple[bool, str]:
        """Whether the test shows that the metric really moved that way, and why.

        Only asked once the point estimate is beyond the tolerance: the verdict needs both."""
        if self.kind == "ci" and self.ci is not None:
            # The point estimate is already beyond the tolerance (the caller checked); the
            # interval has to show that the change is real, i.e. exclude 1 on that side. Asking
            # it to clear 1 +- tol as well would claim "worse by more than the tolerance" with
            # 95 % confidence, which a 500-sample P99 can almost never support: a real 10 % P99
            # regression then ended "inconclusive" in most runs (benchmarks/gate_power.py).
            lo, hi = self.ci
            ci_text = f"the {1 - alpha:.0%} bootstrap CI of the ratio is [{lo:.3f}, {hi:.3f}]"
            if larger:
                return lo > 1.0, f"{ci_text}, {'above' if lo > 1.0 else 'not above'} 1"
            return hi < 1.0, f"{ci_text}, {'below' if hi < 1.0 else 'not below'} 1"
        assert self.p_value is not None and self.effect is not None
        samples_larger = larger != self.invert
        same_way = (self.effect > 0.5) == samples_larger
        ok = self.p_value < alpha and same_way
        p_text = "<0.001" if self.p_value < 0.001 else f"={self.p_value:.2g}"
        text = f"Mann–Whitney on the {self.what}: p{p_text}"
        if self.p_value < alpha and not same_way:
            text += " but the samples moved the other way"
        return ok, text
