"""Sequential gating: the alpha-spending boundaries, each decision, and the look-by-look gate."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from orinbench.bench.stats import bootstrap_ratio_normal_ci, mean_ratio_ci, normal_cdf
from orinbench.errors import IncomparableError, UsageError
from orinbench.gate.compare import compare
from orinbench.gate.sequential import (
    SequentialGate,
    SpendingPlan,
    decide_metric,
    sequential_kind,
)
from orinbench.results.schema import HOST_LATENCY, Environment, ModelRef, Result, RunConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "gate.md"

#: the one-sided error of each look, 6 looks, alpha 0.05, as docs/gate.md quotes them
OBF_6 = (4.01e-08, 0.000103, 0.00142, 0.00452, 0.00803, 0.0109)


def _result(samples: np.ndarray, *, device: dict | None = None) -> Result:
    from orinbench.bench.stats import summarize

    return Result(
        tool_version="t",
        created_utc="",
        environment=Environment(
            host="h",
            cpu="",
            os="",
            python="",
            backend="onnxruntime",
            backend_version="",
            device=device,
        ),
        model=ModelRef(path="", sha256="", inputs=(), outputs=(), name="m"),
        config=RunConfig(backend="onnxruntime"),
        samples={HOST_LATENCY: tuple(samples.tolist())},
        stats={HOST_LATENCY: summarize(samples).to_dict()},
        throughput={"fps": samples.size / (samples.sum() / 1e3)},
    )


def _lognormal(seed: int, n: int, cv: float = 0.05, mean: float = 10.0) -> np.ndarray:
    sigma = math.sqrt(math.log1p(cv * cv))
    rng = np.random.default_rng(seed)
    return rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)


# -- the spending plan ------------------------------------------------------------------------


def test_obrien_fleming_boundaries_are_the_documented_numbers() -> None:
    plan = SpendingPlan(looks=6)
    got = plan.boundaries()
    assert [float(f"{a:.3g}") for a in got] == list(OBF_6)
    assert sum(got) == pytest.approx(0.025, abs=1e-15)
    # A(t) = 2 (1 - Phi(z_{1 - a/2} / sqrt t)), a = 0.025: z = 2.2414
    assert plan.cumulative(3) == pytest.approx(2 * (1 - normal_cdf(2.241402727 / math.sqrt(0.5))))
    # and docs/gate.md quotes the same numbers
    text = DOCS.read_text()
    for a in OBF_6:
        assert f"{a:.3g}" in text, a


def test_bonferroni_splits_equally_and_docs_say_so() -> None:
    plan = SpendingPlan(looks=5, spending="bonferroni")
    assert plan.boundaries() == pytest.approx((0.005,) * 5)
    assert plan.confidence(2) == pytest.approx(0.99)
    assert "bonferroni" in DOCS.read_text()


def test_spending_is_increasing_and_ends_at_alpha_over_two() -> None:
    for looks in (1, 2, 6, 20):
        plan = SpendingPlan(looks=looks, alpha=0.02)
        cum = [plan.cumulative(k) for k in range(looks + 1)]
        assert cum[0] == 0.0 and cum[-1] == pytest.approx(0.01)
        assert all(b >= a for a, b in itertools.pairwise(cum))
        assert cum[-1] > cum[-2]
    # 20 looks: the first spends nothing representable, and decides nothing rather than fail
    assert SpendingPlan(looks=20).look_alpha(1) < 1e-12
    base = _lognormal(1, 3000)
    v = decide_metric(
        "latency.p50_ms",
        baseline_samples=base,
        result_samples=base * 2,
        value=20.0,
        baseline_value=10.0,
        tolerance=0.05,
        plan=SpendingPlan(looks=20),
        look=1,
    )
    assert v.status == "inconclusive" and "spends no error" in v.message
    # one look is the fixed gate's 95 % interval
    assert SpendingPlan(looks=1).confidence(1) == pytest.approx(0.95)


@pytest.mark.parametrize(
    "kwargs", [{"looks": 0}, {"alpha": 0.0}, {"alpha": 1.0}, {"spending": "pocock-ish"}]
)
def test_bad_plans_are_refused(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        SpendingPlan(**kwargs)


# -- intervals ------------------------------------------------------------------------------


def test_mean_ratio_ci_covers_and_narrows() -> None:
    a, b = _lognormal(1, 4000), _lognormal(2, 4000) * 1.1
    lo, hi = mean_ratio_ci(a, b, confidence=0.95)
    assert lo < 1.1 < hi and hi - lo < 0.01
    lo2, hi2 = mean_ratio_ci(a, b, confidence=0.9999)
    assert lo2 < lo and hi2 > hi


def test_normal_bootstrap_widens_with_confidence_past_the_resample_range() -> None:
    a, b = _lognormal(3, 3000), _lognormal(4, 3000)
    lo95, hi95 = bootstrap_ratio_normal_ci(a, b, q=99, confidence=0.95)
    lo, hi = bootstrap_ratio_normal_ci(a, b, q=99, confidence=1 - 8e-8)
    # at 1 - 8e-8 the interval is z = 5.4 spreads wide, not the range of 2000 resamples
    assert (hi - lo) / (hi95 - lo95) == pytest.approx(5.37 / 1.96, rel=0.05)


# -- one metric at one look ------------------------------------------------------------------


def _decide(metric: str, base: np.ndarray, res: np.ndarray, look: int = 6, looks: int = 6):
    q = {"latency.p50_ms": 50, "latency.p99_ms": 99}.get(metric)
    if metric == "throughput.fps":
        value, bvalue = res.size / res.sum(), base.size / base.sum()
    else:
        value, bvalue = float(np.percentile(res, q)), float(np.percentile(base, q))
    return decide_metric(
        metric,
        baseline_samples=base,
        result_samples=res,
        value=value,
        baseline_value=bvalue,
        tolerance=0.05,
        plan=SpendingPlan(looks=looks),
        look=look,
    )


def test_unchanged_is_a_positive_equivalence_decision() -> None:
    base = _lognormal(5, 20000, cv=0.03)
    v = _decide("latency.p50_ms", base, _lognormal(6, 20000, cv=0.03))
    assert v.status == "unchanged"
    assert v.ci[0] >= 0.95 and v.ci[1] <= 1.05
    # the same point estimate with too little data is not "unchanged": no evidence, no decision
    small = _decide("latency.p50_ms", base[:60], _lognormal(6, 60, cv=0.3))
    assert small.status == "inconclusive"


def test_regressed_and_improved_need_the_interval_beyond_tolerance() -> None:
    base = _lognormal(7, 20000)
    slow = _decide("latency.p99_ms", base, _lognormal(8, 20000) * 1.10)
    assert slow.status == "regressed" and slow.ci[0] > 1.05
    fast = _decide("latency.p50_ms", base, _lognormal(9, 20000) * 0.90)
    assert fast.status == "improved" and fast.ci[1] < 0.95
    # fps: higher is better, so slower samples are a regressed fps
    fps = _decide("throughput.fps", base, _lognormal(10, 20000) * 1.10)
    assert fps.status == "regressed" and fps.ci[1] < 0.95


def test_a_change_at_the_tolerance_is_never_decided() -> None:
    base = _lognormal(11, 20000, cv=0.03)
    v = _decide("latency.p50_ms", base, _lognormal(12, 20000, cv=0.03) * 1.05)
    assert v.status == "inconclusive"
    assert v.ci[0] < 1.05 < v.ci[1]


def test_p99_needs_the_fixed_gates_sample_minimum() -> None:
    v = _decide("latency.p99_ms", _lognormal(13, 300), _lognormal(14, 5000))
    assert v.status == "inconclusive" and "needs 368" in v.message


def test_early_looks_are_stricter_than_the_last() -> None:
    base = _lognormal(15, 4000, cv=0.1)
    res = _lognormal(16, 4000, cv=0.1) * 1.08
    first = _decide("latency.p50_ms", base, res, look=1)
    last = _decide("latency.p50_ms", base, res, look=6)
    w1, w6 = first.ci[1] - first.ci[0], last.ci[1] - last.ci[0]
    assert w1 > 2 * w6
    assert "look 1/6, 4000 samples" in first.message and "look 6/6" in last.message
    # the confidence is written with enough digits to tell it from 100 %
    assert "99.999992%" in first.message and "97.82%" in last.message


def test_kinds() -> None:
    assert sequential_kind("latency.p99_ms") == "percentile"
    assert sequential_kind("gpu_compute.p50_ms") == "percentile"
    assert sequential_kind("latency.mean_ms") == "mean"
    assert sequential_kind("throughput.fps") == "mean"
    assert sequential_kind("power.mean_w") is None
    assert sequential_kind("energy.mj_per_inference") is None


# -- the gate, look by look -------------------------------------------------------------------


def _run(gate: SequentialGate, stream: np.ndarray, blocks: int) -> str | None:
    per = stream.size // blocks
    for k in range(1, blocks + 1):
        x = stream[: k * per]
        reason = gate.look_result(k, _result(x))
        if reason is not None:
            return reason
    return None


def test_a_a_stops_early_with_every_metric_unchanged() -> None:
    gate = SequentialGate(_result(_lognormal(20, 6000, cv=0.03)), plan=SpendingPlan(looks=6))
    reason = _run(gate, _lognormal(21, 36000, cv=0.03), 6)
    assert reason is not None and "decided" in reason
    assert len(gate.looks) < 6  # it did not need the whole budget
    verdicts = gate.final_verdicts(None, budget_ended=False)
    assert {v.metric for v in verdicts} == {
        "latency.p50_ms",
        "latency.p95_ms",
        "latency.p99_ms",
        "throughput.fps",
    }
    assert {v.status for v in verdicts} == {"unchanged"}


def test_a_slowdown_stops_with_regressed() -> None:
    gate = SequentialGate(_result(_lognormal(22, 6000, cv=0.05)), plan=SpendingPlan(looks=6))
    reason = _run(gate, _lognormal(23, 36000, cv=0.05) * 1.10, 6)
    assert reason is not None
    statuses = {v.metric: v.status for v in gate.final_verdicts(None)}
    assert set(statuses.values()) == {"regressed"}


def test_an_exhausted_budget_leaves_inconclusive() -> None:
    gate = SequentialGate(_result(_lognormal(24, 2000, cv=0.03)), plan=SpendingPlan(looks=3))
    # exactly at the tolerance: no interval can clear it, whatever the budget
    reason = _run(gate, _lognormal(25, 3000, cv=0.03) * 1.05, 3)
    assert reason is None
    verdicts = {v.metric: v for v in gate.final_verdicts(None, budget_ended=True)}
    p50 = verdicts["latency.p50_ms"]
    assert p50.status == "inconclusive"
    assert p50.message.startswith("the budget ended undecided: look 3/3")
    assert [lk.look for lk in gate.looks] == [1, 2, 3]
    assert "latency.p50_ms" in gate.looks[-1].undecided


def test_decided_metrics_are_not_revisited() -> None:
    base = _lognormal(26, 6000, cv=0.03)
    gate = SequentialGate(_result(base), plan=SpendingPlan(looks=4), metrics=["latency.p50_ms"])
    assert gate.look_result(1, _result(_lognormal(27, 20000, cv=0.03) * 1.2)) is not None
    first = gate.decided["latency.p50_ms"]
    assert first.status == "regressed"
    # later data that would look unchanged does not flip a decision already taken
    gate.look_result(2, _result(_lognormal(28, 20000, cv=0.03)))
    assert gate.decided["latency.p50_ms"] is first


def test_report_records_plan_looks_and_verdicts_as_gate_prints_them() -> None:
    base = _result(_lognormal(29, 3000, cv=0.03))
    gate = SequentialGate(base, plan=SpendingPlan(looks=2), baseline_source="b.json")
    res = _result(_lognormal(30, 8000, cv=0.03))
    gate.look_result(1, res)
    gate.look_result(2, res)
    report = gate.report(res, budget_ended=True)
    rec = gate.record(report)
    assert rec["mode"] == "until-decided" and rec["baseline"] == "b.json"
    assert rec["plan"]["look_alpha"] == pytest.approx(list(SpendingPlan(looks=2).boundaries()))
    assert rec["exit_code"] == report.exit_code
    assert rec["text"] == report.to_text()
    assert [v["metric"] for v in rec["verdicts"]] == [v.metric for v in report.verdicts]
    assert all(isinstance(v["ci"], (list, type(None))) for v in rec["verdicts"])


def test_incomparable_environment_is_refused_before_any_look() -> None:
    base = _result(_lognormal(31, 500), device={"module": "orin-agx"})
    gate = SequentialGate(base)
    with pytest.raises(IncomparableError):
        gate.check(_result(_lognormal(32, 10), device={"module": "orin-nano"}))
    SequentialGate(base, allow_env_mismatch=True).check(
        _result(_lognormal(32, 10), device={"module": "orin-nano"})
    )


def test_power_is_judged_once_at_the_end_by_the_fixed_rule() -> None:
    base = _result(_lognormal(33, 3000, cv=0.03)).with_(
        power={"mean_w": 20.0, "samples_w": list(np.full(50, 20.0) + np.arange(50) % 3)}
    )
    gate = SequentialGate(base)
    assert "power.mean_w" in gate.end_only and "power.mean_w" not in gate.sequential
    res = _result(_lognormal(34, 6000, cv=0.03)).with_(
        power={"mean_w": 20.1, "samples_w": list(np.full(50, 20.1) + np.arange(50) % 3)}
    )
    verdicts = {v.metric: v for v in gate.report(res).verdicts}
    assert verdicts["power.mean_w"].status == "unchanged"
    assert re.search(r"within the 10% tolerance", verdicts["power.mean_w"].message)


def test_a_baseline_too_short_for_the_tolerance_is_flagged() -> None:
    short = SequentialGate(_result(_lognormal(35, 500, cv=0.10)))
    codes = [(w.code, w.message) for w in short.short_baseline()]
    assert any(c == "short-baseline" and "latency.p99_ms" in msg for c, msg in codes)
    long = SequentialGate(_result(_lognormal(36, 20000, cv=0.03)))
    assert long.short_baseline() == []
    report = short.report(_result(_lognormal(37, 500, cv=0.10)))
    assert any(w.code == "short-baseline" for w in report.warnings)


def test_gate_power_quick_runs_on_orinbench_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gate_power.py"
    spec = importlib.util.spec_from_file_location("gate_power", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gate_power", mod)  # its dataclasses look themselves up
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--trials", "6", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith(" 10%   500 ")]
    assert [r.split("|")[0].split()[2] for r in rows] == ["A/A", "all", "tail", "tail"]
    # a 10 % slowdown of every sample never passes either gate
    all_slow = rows[1].split("|")
    assert all_slow[1].split()[0] == "100.0%" and all_slow[2].split()[0] == "100.0%"
    assert "24 trials" in out


def test_a_budget_that_ends_undecided_falls_back_to_the_fixed_gate_on_all_samples() -> None:
    # a 500-sample baseline at CV 10 % knows its P99 only to a few %: the looks cannot show
    # "unchanged" within 5 %, and the plain gate's verdict on the same data is what remains
    # (about half of such runs end undecided: take the first seed that does)
    for seed in range(40, 80, 2):
        baseline = _result(_lognormal(seed, 500, cv=0.10))
        gate = SequentialGate(baseline, plan=SpendingPlan(looks=3))
        stream = _lognormal(seed + 1, 3000, cv=0.10)
        if _run(gate, stream, 3) is None:
            break
    else:
        pytest.fail("no run of 20 ended undecided")
    undecided = set(gate.looks[-1].undecided)
    assert "latency.p99_ms" in undecided
    final = {v.metric: v for v in gate.final_verdicts(_result(stream), budget_ended=True)}
    fixed = {v.metric: v for v in compare(_result(stream), baseline, alpha=gate.plan.alpha)}
    for m in undecided:
        assert final[m].status == fixed[m].status
        assert final[m].value == fixed[m].value
        assert "fixed-length gate on all samples" in final[m].message
    # without the finished result (or before the budget ends) the looks' own verdict stays
    bare = {v.metric: v for v in gate.final_verdicts(None, budget_ended=True)}
    assert bare["latency.p99_ms"].status == "inconclusive"
