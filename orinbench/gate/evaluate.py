"""The gate: targets and a baseline applied to one result, giving a :class:`GateReport`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from ..bench.stats import quality_warnings
from ..errors import IncomparableError, UsageError
from ..results.comparable import run_differences
from ..results.schema import HOST_LATENCY, QualityWarning, Result
from .compare import check_comparable, compare
from .precision import precision_warnings
from .targets import Targets
from .verdict import GateReport, MetricVerdict, ReportWarning, Status


def check_targets(result: Result, targets: Targets) -> list[MetricVerdict]:
    """One ``target`` verdict per target: ``pass``, ``fail``, or ``error`` if the metric is absent.

    A target naming a metric the result lacks is an error, never a pass; its message lists the
    metric families the result has and the closest metric names.
    """
    metrics = result.metrics()
    valueless = result.valueless_metrics()
    out = []
    for t in targets.targets:
        value = metrics.get(t.metric)
        if value is None:
            status: Status = "error"
            message = (
                "the result records no value for it (null or not finite: not measured, or the "
                "run produced NaN/inf; see its warnings)"
                if t.metric in valueless
                else _missing_message(t.metric, metrics)
            )
        elif t.check(value):
            status, message = "pass", ""
        else:
            status, message = "fail", f"target {t} not met"
        out.append(
            MetricVerdict(
                metric=t.metric,
                kind="target",
                status=status,
                value=value,
                threshold=t.threshold,
                op=t.op,
                message=message,
            )
        )
    return out


def _missing_message(metric: str, metrics: Mapping[str, float]) -> str:
    prefixes = sorted({m.split(".", 1)[0] for m in metrics})
    close = difflib.get_close_matches(metric, list(metrics), n=3, cutoff=0.6)
    msg = (
        "the result has no such metric (available: "
        + (", ".join(f"{p}.*" for p in prefixes) or "none")
        + ")"
    )
    if close:
        msg += "; did you mean " + " or ".join(close) + "?"
    return msg


def result_warnings(result: Result, *, source: str) -> list[ReportWarning]:
    """The result's stored quality warnings, plus any that its raw latency samples show now.

    Warnings are recomputed so that a result written by a tool that stored none is still checked;
    a code already stored is not repeated.
    """
    found: list[QualityWarning] = list(result.warnings)
    raw = result.samples.get(HOST_LATENCY)
    if raw:
        codes = {w.code for w in found}
        found += [w for w in quality_warnings(raw) if w.code not in codes]
    return [ReportWarning(source=source, code=w.code, message=w.message) for w in found]


def check_run_comparable(
    result: Result, baseline: Result, *, allow_env_mismatch: bool = False
) -> tuple[str, ...]:
    """Refuse (IncomparableError, exit 3) a baseline run with other input shapes or runtime.

    Input shapes are the workload: a difference is never overridden. ONNX Runtime's providers
    and thread count are the setup: ``allow_env_mismatch`` turns their difference into warning
    lines (returned). See :mod:`orinbench.results.comparable` for unknown values.
    """
    diffs = run_differences(result, baseline)
    hard = [d for d in diffs if d.workload]
    soft = [d for d in diffs if not d.workload]
    if hard or (soft and not allow_env_mismatch):
        shown = hard + soft if not allow_env_mismatch else hard
        raise IncomparableError(
            "the result and the baseline are not comparable runs",
            why="; ".join(d.describe() for d in shown),
            fix="compare against a baseline recorded with the same --shape and ONNX Runtime "
            "settings ('orinbench baseline record')"
            + ("" if hard else ", or pass --allow-env-mismatch to compare anyway"),
        )
    return tuple(f"compared despite differing {d.describe()}" for d in soft)


def gate(
    result: Result,
    *,
    targets: Targets | None = None,
    baseline: Result | None = None,
    allow_env_mismatch: bool = False,
    tolerances: Mapping[str, float] | None = None,
    inconclusive_ok: bool = False,
    seed: int = 0,
) -> GateReport:
    """Judge ``result`` against ``targets`` and/or ``baseline``.

    ``tolerances`` (fractions) override and extend the targets file's ``[tolerance]`` table.
    Raises :class:`~orinbench.errors.IncomparableError` (exit 3) when the environments differ on
    a comparability key, unless ``allow_env_mismatch``; UsageError when there is nothing to judge.
    ``seed`` seeds the bootstrap, so the same inputs give the same report.
    """
    if targets is None and baseline is None:
        raise UsageError(
            "nothing to gate against", fix="give --targets FILE and/or --baseline FILE"
        )
    verdicts: list[MetricVerdict] = []
    env_warnings: tuple[str, ...] = ()
    warnings = result_warnings(result, source="result")
    if targets is not None:
        verdicts += check_targets(result, targets)
    if baseline is not None:
        # the run's own keys first: a different workload is named even if the setup differs too
        run_warnings = check_run_comparable(result, baseline, allow_env_mismatch=allow_env_mismatch)
        env_warnings = check_comparable(result, baseline, allow_env_mismatch=allow_env_mismatch)
        env_warnings = (*run_warnings, *env_warnings)
        tol = dict(targets.tolerances) if targets is not None else {}
        tol.update(tolerances or {})
        verdicts += compare(result, baseline, tolerances=tol, seed=seed)
        warnings += result_warnings(baseline, source="baseline")
        warnings += precision_warnings(baseline, tolerances=tol)
    elif tolerances:
        raise UsageError(
            "tolerances were given without a baseline",
            fix="pass --baseline FILE or --baseline-dir DIR",
        )
    return GateReport(
        verdicts=tuple(verdicts),
        warnings=tuple(warnings),
        env_warnings=env_warnings,
        inconclusive_ok=inconclusive_ok,
    )
