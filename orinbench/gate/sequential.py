"""Sequential gating: keep measuring until every gated metric is decided against the baseline.

``orinbench bench ... --baseline B.json --until-decided`` looks at the samples after each block
of the measured run and stops once every gated metric is *decided*: ``regressed``, ``improved``
or ``unchanged``. Each decision is positive evidence, never the absence of it:

* ``regressed`` (lower-is-better metric): the interval of ``result / baseline`` lies entirely
  above ``1 + tolerance``; ``improved``: entirely below ``1 - tolerance``;
* ``unchanged``: the interval lies entirely inside ``[1 - tolerance, 1 + tolerance]``
  (an equivalence test: two one-sided tests, one at each tolerance bound);
* otherwise the metric is undecided and the run goes on. A metric still undecided when the
  budget ends gets the verdict of ``gate``'s fixed-length rule on all the samples of the run
  (tolerance AND a significance test, :func:`~orinbench.gate.compare.compare`: the estimate
  beyond the tolerance and the 95 % interval clear of 1, a weaker claim than the looks'),
  ``regressed``,
  ``unchanged``, ``improved`` or ``inconclusive`` (exit 1 unless ``--inconclusive-ok``). So the
  looks only ever add decisions; the run never ends worse than the plain gate on the same data.

Repeated looks (alpha spending, docs/gate.md states the rule): the run has ``K`` planned looks,
at ``k / K`` of the budget. Look ``k`` uses an equal-tailed interval of confidence ``1 - 2 a_k``,
where ``a_k = A(k / K) - A((k - 1) / K)`` is the share of the one-sided error ``a = alpha / 2``
that the spending function ``A`` releases at that look (``A(1) = a``). Each decision above needs
one interval bound on the wrong side of the true ratio, which at look ``k`` happens with
probability at most ``a_k``; by the union bound over the looks, a metric is wrongly declared
``regressed``, ``improved`` or ``unchanged`` with probability at most ``sum a_k = a``, however
the looks are correlated and however often the run stops early. The default spending function is
Lan–DeMets' O'Brien–Fleming type ``A(t) = 2 (1 - Phi(z_{1 - a/2} / sqrt t))``, which keeps the
early looks strict (a 10 s block decides only clear cases) and leaves almost all of ``a`` for the
last look; ``bonferroni`` splits ``a`` equally, ``a_k = a / K``.

Tests per metric (each look):

* percentiles (``<series>.p99_ms``): :func:`~orinbench.bench.stats.bootstrap_ratio_normal_ci`
  on the raw samples: the bootstrap of ``gate``, read as a normal interval because a percentile
  interval cannot reach the early looks' confidence (99.99999 %) from 2000 resamples; both sides
  need the :func:`~orinbench.bench.stats.min_samples_for_percentile` of ``gate`` (368 for P99);
* ``<series>.mean_ms`` and ``throughput.fps``: :func:`~orinbench.bench.stats.mean_ratio_ci` of
  the raw samples (the latency samples for fps; the harness's fps is the iteration count over the
  summed iteration times, so the fps ratio is the inverse of the mean-latency ratio);
* metrics without raw samples during the run (``power.*``, whose trace is read when the window
  closes, and ``energy.*``) are judged once, on the final result, by the fixed rule of
  :func:`~orinbench.gate.compare.compare`; they do not hold the run open.

A decided metric keeps its verdict: later looks do not revisit it (revisiting would add looks
to its error budget).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..bench.stats import (
    bootstrap_ratio_normal_ci,
    mean_ratio_ci,
    min_samples_for_percentile,
    normal_cdf,
    normal_quantile,
)
from ..errors import UsageError
from ..results.schema import HOST_LATENCY, Result
from .compare import (
    _PCT_RE,
    DEFAULT_ALPHA,
    _raw_series,
    _split_series,
    check_comparable,
    compare,
    compared_metrics,
    default_tolerance,
    direction,
)
from .evaluate import check_run_comparable, result_warnings
from .precision import precision_warnings
from .verdict import GateReport, MetricVerdict, ReportWarning, Status

Spending = Literal["obrien-fleming", "bonferroni"]
SPENDING_FUNCTIONS: tuple[str, ...] = ("obrien-fleming", "bonferroni")
#: default number of planned looks: one per 10 s block of the default 60 s budget
DEFAULT_LOOKS = 6
#: a look whose one-sided error is below this decides nothing (its interval would be unbounded)
MIN_LOOK_ALPHA = 1e-12
#: statuses that end the sequential test of a metric
DECIDED: frozenset[str] = frozenset({"regressed", "improved", "unchanged", "error"})


@dataclass(frozen=True)
class SpendingPlan:
    """``looks`` planned looks sharing the one-sided error ``alpha / 2`` (see the module doc)."""

    looks: int = DEFAULT_LOOKS
    alpha: float = DEFAULT_ALPHA
    spending: Spending = "obrien-fleming"

    def __post_init__(self) -> None:
        if self.looks < 1:
            raise UsageError(f"{self.looks} looks is too few", fix="plan at least 1 look")
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"alpha {self.alpha!r} is out of range", fix="use e.g. 0.05")
        if self.spending not in SPENDING_FUNCTIONS:
            raise UsageError(
                f"unknown spending function {self.spending!r}",
                fix=f"choose one of {', '.join(SPENDING_FUNCTIONS)}",
            )

    @property
    def one_sided(self) -> float:
        """``a = alpha / 2``: the error budget of each one-sided claim."""
        return self.alpha / 2.0

    def cumulative(self, k: int) -> float:
        """``A(k / K)``: the one-sided error spent by the end of look ``k`` (0 for k = 0)."""
        if not 0 <= k <= self.looks:
            raise UsageError(f"look {k} is outside 0..{self.looks}", fix="count looks from 1")
        if k == 0:
            return 0.0
        if k == self.looks:
            return self.one_sided  # exact at the last look, whatever the rounding
        t = k / self.looks
        a = self.one_sided
        if self.spending == "bonferroni":
            return a * t
        z = normal_quantile(1.0 - a / 2.0)
        return 2.0 * (1.0 - normal_cdf(z / math.sqrt(t)))

    def look_alpha(self, k: int) -> float:
        """``a_k = A(k / K) - A((k - 1) / K)``: the one-sided error of look ``k``'s interval."""
        return self.cumulative(k) - self.cumulative(k - 1)

    def confidence(self, k: int) -> float:
        """The confidence of look ``k``'s equal-tailed interval, ``1 - 2 a_k``."""
        return 1.0 - 2.0 * self.look_alpha(k)

    def boundaries(self) -> tuple[float, ...]:
        """``(a_1, ..., a_K)``; they sum to ``alpha / 2``."""
        return tuple(self.look_alpha(k) for k in range(1, self.looks + 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "looks": self.looks,
            "alpha": self.alpha,
            "spending": self.spending,
            "look_alpha": list(self.boundaries()),
        }


def sequential_kind(metric: str) -> str | None:
    """``percentile`` or ``mean`` for metrics tested at every look; None for end-only metrics."""
    if metric.startswith("throughput.") and direction(metric) == "higher":
        return "mean"
    if metric.startswith(("power.", "energy.", "accuracy.", "soak.")):
        return None
    split = _split_series(metric)
    if split is None:
        return None
    stat = split[1]
    if _PCT_RE.match(stat):
        return "percentile"
    if stat == "mean_ms":
        return "mean"
    return None


def series_of(metric: str) -> str:
    """The raw series a sequentially tested metric is judged on (``latency`` for fps)."""
    if metric.startswith("throughput."):
        return HOST_LATENCY
    split = _split_series(metric)
    if split is None:
        raise UsageError(f"{metric} has no raw series", fix="gate it with a target")
    return split[0]


def decide_metric(
    metric: str,
    *,
    baseline_samples: npt.ArrayLike,
    result_samples: npt.ArrayLike,
    value: float,
    baseline_value: float,
    tolerance: float,
    plan: SpendingPlan,
    look: int,
    n_resamples: int = 2000,
    seed: int = 0,
) -> MetricVerdict:
    """The verdict of one metric at look ``look`` of ``plan``: decided, or ``inconclusive``.

    ``value`` and ``baseline_value`` are the metric's point values (for the delta shown);
    the decision rests only on the interval of the ratio (module docstring).
    """
    kind = sequential_kind(metric)
    d = direction(metric)
    if kind is None or d is None:
        raise UsageError(f"{metric} has no sequential test", fix="judge it with gate's fixed rule")
    a_k = plan.look_alpha(look)
    conf = 1.0 - 2.0 * a_k
    base = np.asarray(baseline_samples, dtype=np.float64)
    res = np.asarray(result_samples, dtype=np.float64)
    delta = value / baseline_value - 1.0 if baseline_value else math.nan
    where = f"look {look}/{plan.looks}, {res.size} samples"

    def v(status: Status, message: str, ci: tuple[float, float] | None = None) -> MetricVerdict:
        return MetricVerdict(
            metric=metric,
            kind="baseline",
            status=status,
            value=value,
            baseline_value=baseline_value,
            tolerance_pct=tolerance * 100.0,
            delta_pct=delta * 100.0 if math.isfinite(delta) else None,
            ci=ci,
            message=message,
        )

    if a_k < MIN_LOOK_ALPHA:
        # O'Brien-Fleming spends next to nothing on the first of many looks: no interval that
        # strict can be computed (nor could it clear the tolerance)
        return v("inconclusive", f"{where}: this look spends no error (a_k = {a_k:.2g})")
    if kind == "percentile":
        m = _PCT_RE.match(series_stat(metric))
        assert m is not None
        q = float(m.group(1).replace("_", "."))
        # the same minimum as gate's fixed rule: the percentile's own 95 % interval must exist
        need = min_samples_for_percentile(q / 100.0, 1.0 - plan.alpha)
        if min(base.size, res.size) < need:
            return v(
                "inconclusive",
                f"{where}: too few samples for P{q:g} (baseline {base.size}, result "
                f"{res.size}; it needs {need})",
            )
        ci = bootstrap_ratio_normal_ci(
            base, res, q=q, n_resamples=n_resamples, confidence=conf, seed=seed + look
        )
        what = f"the {_conf(conf)} bootstrap CI of the P{q:g} ratio"
    else:
        if min(base.size, res.size) < 2:
            return v("inconclusive", f"{where}: too few samples for an interval of the mean")
        lo, hi = mean_ratio_ci(base, res, confidence=conf)
        if metric.startswith("throughput."):
            ci = (1.0 / hi, 1.0 / lo)  # fps moves inversely to the mean latency
            what = f"the {_conf(conf)} CI of the fps ratio (from the mean latency)"
        else:
            ci = (lo, hi)
            what = f"the {_conf(conf)} CI of the mean ratio"
    lo, hi = ci
    up, down = 1.0 + tolerance, 1.0 - tolerance
    evidence = f"{where}: {what} is [{lo:.3f}, {hi:.3f}]"
    tol = f"{tolerance * 100:.3g}%"
    worse_if_larger = d == "lower"
    if lo > up:
        status: Status = "regressed" if worse_if_larger else "improved"
        return v(status, f"{evidence}, above {up:.3f} (tolerance {tol})", ci)
    if hi < down:
        status = "improved" if worse_if_larger else "regressed"
        return v(status, f"{evidence}, below {down:.3f} (tolerance {tol})", ci)
    if lo >= down and hi <= up:
        return v("unchanged", f"{evidence}, inside [{down:.3f}, {up:.3f}] (tolerance {tol})", ci)
    return v("inconclusive", f"{evidence}, not yet clear of [{down:.3f}, {up:.3f}]", ci)


def series_stat(metric: str) -> str:
    split = _split_series(metric)
    return split[1] if split is not None else metric


def _conf(conf: float) -> str:
    """97.82%, 99.979%, 99.999992%: enough digits to show how far from 100 % it is."""
    pct = conf * 100.0
    rest = 100.0 - pct
    digits = 2 if rest <= 0.0 else min(10, max(2, math.ceil(-math.log10(rest))))
    return f"{pct:.{digits}f}%"


@dataclass(frozen=True)
class Look:
    """What one look saw: its number, the iterations and seconds so far, what stayed open."""

    look: int
    iterations: int
    elapsed_s: float
    look_alpha: float
    undecided: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "look": self.look,
            "iterations": self.iterations,
            "elapsed_s": self.elapsed_s,
            "look_alpha": self.look_alpha,
            "undecided": list(self.undecided),
        }


class SequentialGate:
    """Judge a growing result against ``baseline`` look by look (the module docstring's rule).

    ``check`` refuses an incomparable environment before anything is measured; ``look`` is the
    harness's look callback (via :meth:`look_result` or :meth:`look_samples`); ``report`` makes
    the final :class:`GateReport` of the finished result.
    """

    def __init__(
        self,
        baseline: Result,
        *,
        plan: SpendingPlan | None = None,
        tolerances: Mapping[str, float] | None = None,
        metrics: Iterable[str] | None = None,
        allow_env_mismatch: bool = False,
        inconclusive_ok: bool = False,
        n_resamples: int = 2000,
        seed: int = 0,
        baseline_source: str = "",
    ) -> None:
        self.baseline = baseline
        self.plan = plan if plan is not None else SpendingPlan()
        self.tolerances = dict(tolerances or {})
        self.allow_env_mismatch = allow_env_mismatch
        self.inconclusive_ok = inconclusive_ok
        self.n_resamples = n_resamples
        self.seed = seed
        self.baseline_source = baseline_source
        self.names = compared_metrics(baseline, metrics=metrics, tolerances=self.tolerances)
        self.base_values = baseline.metrics()
        self.sequential = [m for m in self.names if sequential_kind(m) is not None]
        self.end_only = [m for m in self.names if m not in self.sequential]
        self._base_raw: dict[str, np.ndarray | None] = {
            s: _raw_series(baseline, s) for s in {series_of(m) for m in self.sequential}
        }
        self.decided: dict[str, MetricVerdict] = {}
        self.latest: dict[str, MetricVerdict] = {}
        self.looks: list[Look] = []
        self.env_warnings: tuple[str, ...] = ()

    def tolerance(self, metric: str) -> float:
        return self.tolerances.get(metric, default_tolerance(metric))

    def check(self, result: Result) -> None:
        """Exit 3 (IncomparableError) now if ``result`` is not comparable with the baseline: its
        run (input shapes, ONNX Runtime threads and providers) or its environment differ, as
        ``gate`` checks them (run first, so a different workload is named even if the setup
        differs too).

        ``result`` may be a skeleton without samples: only its environment and config are read.
        """
        run_warnings = check_run_comparable(
            result, self.baseline, allow_env_mismatch=self.allow_env_mismatch
        )
        env_warnings = check_comparable(
            result, self.baseline, allow_env_mismatch=self.allow_env_mismatch
        )
        self.env_warnings = (*run_warnings, *env_warnings)

    @property
    def undecided(self) -> list[str]:
        return [m for m in self.sequential if m not in self.decided]

    def look_samples(
        self,
        look: int,
        *,
        series: Mapping[str, npt.ArrayLike],
        values: Mapping[str, float],
        elapsed_s: float = math.nan,
    ) -> str | None:
        """Judge every undecided metric on the samples so far; a stop reason once all are decided.

        ``series`` maps a series name (``latency``) to the raw samples so far, ``values`` a metric
        name to its current point value.
        """
        for m in self.undecided:
            verdict = self._judge(m, look, series, values)
            self.latest[m] = verdict
            if verdict.status in DECIDED:
                self.decided[m] = verdict
        n = len(np.asarray(series.get(HOST_LATENCY, ())))
        self.looks.append(
            Look(
                look=look,
                iterations=n,
                elapsed_s=elapsed_s,
                look_alpha=self.plan.look_alpha(look),
                undecided=tuple(self.undecided),
            )
        )
        if self.undecided:
            return None
        counts: dict[str, int] = {}
        for v in self.decided.values():
            counts[v.status] = counts.get(v.status, 0) + 1
        what = ", ".join(f"{c} {s}" for s, c in sorted(counts.items()))
        return f"every gated metric decided at look {look}/{self.plan.looks} ({what})"

    def look_result(self, look: int, result: Result, *, elapsed_s: float = math.nan) -> str | None:
        """:meth:`look_samples` on a (partial) result's raw samples and metric values."""
        series = {s: result.samples.get(s, ()) for s in self._base_raw}
        return self.look_samples(look, series=series, values=result.metrics(), elapsed_s=elapsed_s)

    def _judge(
        self,
        metric: str,
        look: int,
        series: Mapping[str, npt.ArrayLike],
        values: Mapping[str, float],
    ) -> MetricVerdict:
        tol = self.tolerance(metric)
        base_value = self.base_values.get(metric)
        value = values.get(metric)

        def error(message: str) -> MetricVerdict:
            return MetricVerdict(
                metric=metric,
                kind="baseline",
                status="error",
                value=value,
                baseline_value=base_value,
                tolerance_pct=tol * 100.0,
                message=message,
            )

        if base_value is None:
            return error(
                "the baseline has no such metric; record a new baseline or remove it from "
                "[tolerance]"
            )
        if value is None:
            return error(
                "the result lacks this metric, which the baseline has; re-run with the same "
                "options (stages, backend) as the baseline"
            )
        name = series_of(metric)
        base_raw = self._base_raw.get(name)
        raw = series.get(name)
        res_raw = None if raw is None else np.asarray(raw, dtype=np.float64)
        if base_raw is None or res_raw is None or res_raw.size == 0:
            which = "baseline" if base_raw is None else "result"
            return error(
                f"the {which} lacks raw '{name}' samples, so --until-decided cannot test it; "
                "use a baseline that keeps raw samples"
            )
        if base_value <= 0.0:
            return error("the baseline value is not positive, so no ratio exists")
        return decide_metric(
            metric,
            baseline_samples=base_raw,
            result_samples=res_raw,
            value=value,
            baseline_value=base_value,
            tolerance=tol,
            plan=self.plan,
            look=look,
            n_resamples=self.n_resamples,
            seed=self.seed,
        )

    def final_verdicts(
        self, result: Result | None, *, budget_ended: bool = True
    ) -> list[MetricVerdict]:
        """Decided metrics as decided, undecided ones ``inconclusive``, in the compared order.

        End-only metrics (power, energy) are judged on ``result`` by :func:`compare`'s fixed rule;
        without a result (simulations) they are ``error``.
        """
        metrics = result.metrics() if result is not None else {}
        why = "the budget ended" if budget_ended else "the run ended"
        verdicts: list[MetricVerdict] = []
        for m in self.names:
            if m in self.decided:
                verdicts.append(self.decided[m])
            elif m in self.sequential:
                last = self.latest.get(m)
                if last is None:  # the run ended before the first look
                    verdicts.append(
                        MetricVerdict(
                            metric=m,
                            kind="baseline",
                            status="inconclusive",
                            value=metrics.get(m),
                            baseline_value=self.base_values.get(m),
                            tolerance_pct=self.tolerance(m) * 100.0,
                            message=f"{why} before the first look; give a longer --max-seconds",
                        )
                    )
                elif result is not None and budget_ended:
                    verdicts.append(self._fixed_fallback(m, result, last))
                else:
                    message = (
                        f"{why} undecided: {last.message}; run longer (--max-seconds) "
                        "or reduce noise"
                    )
                    verdicts.append(MetricVerdict(**{**_fields(last), "message": message}))
            elif result is None:
                verdicts.append(
                    MetricVerdict(
                        metric=m,
                        kind="baseline",
                        status="error",
                        message="judged only on a finished result",
                    )
                )
            else:
                verdicts += compare(
                    result,
                    self.baseline,
                    metrics=[m],
                    tolerances={m: self.tolerance(m)},
                    alpha=self.plan.alpha,
                    n_resamples=self.n_resamples,
                    seed=self.seed,
                )
        return verdicts

    def _fixed_fallback(self, m: str, result: Result, last: MetricVerdict) -> MetricVerdict:
        """The verdict of a metric the looks left undecided when the budget ended: ``gate``'s
        fixed-length rule (tolerance AND a significance test, :func:`compare`) on every sample
        of the finished run, so that ``--until-decided`` never ends worse than the plain gate on
        the same data would. Its error is the fixed gate's (docs/gate.md), not the sequential
        guarantee, and the message says so."""
        (fixed,) = compare(
            result,
            self.baseline,
            metrics=[m],
            tolerances={m: self.tolerance(m)},
            alpha=self.plan.alpha,
            n_resamples=self.n_resamples,
            seed=self.seed,
        )
        message = (
            f"not decided by the {self.plan.looks} looks ({last.message}); the fixed-length "
            f"gate on all samples: {fixed.message}"
        )
        return MetricVerdict(**{**_fields(fixed), "message": message})

    def short_baseline(self) -> list[ReportWarning]:
        """A ``short-baseline`` warning per gated percentile the baseline knows too imprecisely
        for its tolerance (:mod:`orinbench.gate.precision`, the rule ``baseline record``
        enforces). The baseline does not grow, so its own interval is a floor under every ratio
        interval: ``unchanged`` can then be shown only when the runs happen to agree closely,
        and the fixed rule at the end of the budget can fail an unchanged run by chance."""
        return precision_warnings(
            self.baseline,
            tolerances={m: self.tolerance(m) for m in self.sequential},
            metrics=[m for m in self.sequential if sequential_kind(m) == "percentile"],
        )

    def report(self, result: Result, *, budget_ended: bool = True) -> GateReport:
        """The final :class:`GateReport` of the finished ``result`` (see :meth:`final_verdicts`)."""
        warnings = (
            result_warnings(result, source="result")
            + result_warnings(self.baseline, source="baseline")
            + self.short_baseline()
        )
        return GateReport(
            verdicts=tuple(self.final_verdicts(result, budget_ended=budget_ended)),
            warnings=tuple(warnings),
            env_warnings=self.env_warnings,
            inconclusive_ok=self.inconclusive_ok,
        )

    def record(self, report: GateReport) -> dict[str, Any]:
        """The ``extra.gate`` section of the result: plan, looks, verdicts, outcome, exit code."""
        return {
            "mode": "until-decided",
            "baseline": self.baseline_source,
            "plan": self.plan.to_dict(),
            "looks": [lk.to_dict() for lk in self.looks],
            "verdicts": [_verdict_dict(v) for v in report.verdicts],
            "env_warnings": list(report.env_warnings),
            "inconclusive_ok": report.inconclusive_ok,
            "summary": report.summary(),
            "outcome": report.outcome,
            "exit_code": report.exit_code,
            "text": report.to_text(),
        }


def _fields(v: MetricVerdict) -> dict[str, Any]:
    return {k: getattr(v, k) for k in v.__dataclass_fields__}


def _verdict_dict(v: MetricVerdict) -> dict[str, Any]:
    d = _fields(v)
    d["ci"] = list(v.ci) if v.ci is not None else None
    return {k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in d.items()}
