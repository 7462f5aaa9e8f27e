"""Baseline comparison: tolerance AND significance, fail-closed verdicts, environment checks."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from _gate_results import JETSON, latency_samples, make_result

from orinbench.bench.stats import bootstrap_ratio_ci, summarize
from orinbench.errors import ExitCode, IncomparableError, UsageError
from orinbench.gate import compare, gate, parse_targets
from orinbench.gate.compare import (
    COMPARABILITY_KEYS,
    DEFAULT_BASELINE_METRICS,
    _power_samples,
    _split_series,
    _Test,
    check_comparable,
    default_tolerance,
    direction,
    environment_differences,
)
from orinbench.results.schema import Result


def statuses(verdicts: list) -> dict[str, str]:
    return {v.metric: v.status for v in verdicts}


BASE = make_result(seed=1)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_noise_is_unchanged(seed: int) -> None:
    got = statuses(compare(make_result(seed=seed), BASE))
    assert got == {
        "latency.p50_ms": "unchanged",
        "latency.p95_ms": "unchanged",
        "latency.p99_ms": "unchanged",
        "throughput.fps": "unchanged",
    }


def test_ten_percent_slower_regresses_everywhere() -> None:
    slow = make_result(latency_samples(2000, seed=2) * 1.10)
    verdicts = compare(slow, BASE)
    assert set(statuses(verdicts).values()) == {"regressed"}
    p99 = next(v for v in verdicts if v.metric == "latency.p99_ms")
    assert p99.delta_pct == pytest.approx(10.0, abs=2.0)
    assert p99.ci is not None and p99.ci[0] > 1.05
    assert p99.tolerance_pct == pytest.approx(5.0)
    fps = next(v for v in verdicts if v.metric == "throughput.fps")
    assert fps.delta_pct is not None and fps.delta_pct < -5 and fps.p_value < 0.05


def test_ten_percent_faster_improves() -> None:
    fast = make_result(latency_samples(2000, seed=2) / 1.10)
    assert set(statuses(compare(fast, BASE)).values()) == {"improved"}


def test_beyond_tolerance_but_not_significant_is_inconclusive() -> None:
    # few, very noisy samples: the median moves 8 % by chance, the test cannot confirm it
    rng = np.random.default_rng(5)
    a = 20.0 * np.exp(0.4 * rng.standard_normal(40))
    b = a * 1.08 * np.exp(0.05 * rng.standard_normal(40))
    rng.shuffle(b)
    v = compare(make_result(b), make_result(a), metrics=["latency.mean_ms"])[0]
    assert v.delta_pct is not None and v.delta_pct > 5
    assert v.status == "inconclusive"
    assert "not significant" in v.message


def test_a_real_change_within_tolerance_is_unchanged() -> None:
    # 2 % slower, highly significant with many samples, but inside the 5 % tolerance
    r = make_result(latency_samples(2000, seed=2) * 1.02)
    assert set(statuses(compare(r, BASE)).values()) == {"unchanged"}
    tight = compare(r, BASE, tolerances={"latency.p50_ms": 0.01})
    assert statuses(tight)["latency.p50_ms"] == "regressed"


def test_too_few_samples_for_p99_is_inconclusive_not_pass() -> None:
    r = make_result(n=200, seed=2)
    v = statuses(compare(r, BASE))
    assert v["latency.p99_ms"] == "inconclusive"
    assert v["latency.p50_ms"] == "unchanged"
    msg = next(x.message for x in compare(r, BASE) if x.metric == "latency.p99_ms")
    assert "368" in msg and "200" in msg


def test_missing_raw_samples_is_inconclusive() -> None:
    r = make_result(seed=2, keep_samples=False)
    v = compare(r, BASE)
    assert {x.status for x in v} == {"inconclusive"}
    assert all("raw" in x.message for x in v)


def test_metric_the_result_lacks_is_an_error() -> None:
    base = make_result(seed=1, power={"mean_w": 30.0, "samples_w": [30.0] * 50})
    v = statuses(compare(make_result(seed=2), base))
    assert v["power.mean_w"] == "error"


def test_tolerance_table_adds_metrics_and_errors_on_unknown_ones() -> None:
    v = statuses(
        compare(
            make_result(seed=2), BASE, tolerances={"latency.mean_ms": 0.05, "latency.nope_ms": 0.05}
        )
    )
    assert v["latency.mean_ms"] == "unchanged"
    assert v["latency.nope_ms"] == "error"


def test_power_uses_raw_power_samples_when_present() -> None:
    rng = np.random.default_rng(0)
    base_w = 30 + rng.normal(0, 0.5, 400)
    hot_w = 36 + rng.normal(0, 0.5, 400)

    def with_power(w: np.ndarray, seed: int) -> object:
        trace = {"t_s": list(np.arange(w.size) * 0.05), "total_w": list(w)}
        return make_result(seed=seed, power={"mean_w": float(w.mean()), "trace": trace})

    v = statuses(compare(with_power(hot_w, 2), with_power(base_w, 1)))
    assert v["power.mean_w"] == "regressed"
    # a point estimate without raw samples is never more than inconclusive beyond tolerance
    no_raw = compare(
        make_result(seed=2, power={"mean_w": 36.0}),
        make_result(seed=1, power={"mean_w": 30.0}),
        tolerances={"power.mean_w": 0.10},
    )
    assert statuses(no_raw)["power.mean_w"] == "inconclusive"
    within = compare(
        make_result(seed=2, power={"mean_w": 30.5}),
        make_result(seed=1, power={"mean_w": 30.0}),
        tolerances={"power.mean_w": 0.10},
    )
    assert statuses(within)["power.mean_w"] == "unchanged"


def test_directions_and_default_tolerances() -> None:
    assert direction("latency.p99_ms") == "lower"
    assert direction("throughput.fps") == "higher"
    assert direction("power.mean_w") == "lower"
    assert direction("energy.mj_per_inference") == "lower"
    assert direction("accuracy.cosine") is None
    assert default_tolerance("latency.p99_ms") == 0.05
    assert default_tolerance("power.mean_w") == 0.10


# -- environment --------------------------------------------------------------------------------


def test_environment_mismatch_lists_each_key_with_both_values() -> None:
    other = make_result(seed=2, device={**JETSON, "tensorrt": "10.3.0", "power_mode": "30W"})
    with pytest.raises(IncomparableError) as info:
        gate(other, baseline=BASE)
    assert info.value.exit_code == ExitCode.INCOMPARABLE
    msg = str(info.value)
    assert "device.tensorrt: result '10.3.0' vs baseline '8.6.2'" in msg
    assert "device.power_mode: result '30W' vs baseline 'MAXN'" in msg
    assert "--allow-env-mismatch" in msg and "\n" not in msg


def test_precision_and_backend_are_comparability_keys() -> None:
    diffs = environment_differences(make_result(precision="int8", backend="onnxruntime"), BASE)
    assert {k for k, _, _ in diffs} == {"precision", "backend"}


def test_none_matches_none_but_not_a_value() -> None:
    off = make_result(seed=2, device=None)
    assert environment_differences(off, make_result(seed=1, device=None)) == []
    keys = {k for k, _, _ in environment_differences(off, BASE)}
    assert keys == {k for k in COMPARABILITY_KEYS if k.startswith("device.")}
    assert environment_differences(make_result(device={**JETSON, "jetpack": 6.0}), BASE) == []


def test_module_may_be_called_model() -> None:
    dev = {k: v for k, v in JETSON.items() if k != "module"} | {"model": JETSON["module"]}
    assert environment_differences(make_result(device=dev), BASE) == []


def test_model_change_is_not_a_mismatch() -> None:
    r = make_result(seed=2, sha256="cd" * 32, model_name="bevfusion-tiny")
    assert check_comparable(r, BASE) == ()


def test_allow_env_mismatch_turns_the_error_into_a_warning() -> None:
    other = make_result(seed=2, device={**JETSON, "l4t": "36.4.0"})
    report = gate(other, baseline=BASE, allow_env_mismatch=True)
    assert report.exit_code == 0
    assert len(report.env_warnings) == 1 and "device.l4t" in report.env_warnings[0]
    assert "device.l4t" in report.to_text() and "device.l4t" in report.to_markdown()


# -- gate() -------------------------------------------------------------------------------------


def test_gate_needs_something_to_judge() -> None:
    with pytest.raises(UsageError):
        gate(BASE)


def test_gate_combines_targets_and_baseline() -> None:
    t = parse_targets(
        '"latency.p99_ms" = "< 100"\n"power.mean_w" = "< 60"\n'
        '[tolerance]\n"latency.p50_ms" = "20%"\n'
    )
    r = make_result(latency_samples(2000, seed=2) * 1.10)
    report = gate(r, targets=t, baseline=BASE)
    got = {(v.kind, v.metric): v.status for v in report.verdicts}
    assert got[("target", "latency.p99_ms")] == "pass"
    assert got[("target", "power.mean_w")] == "error"
    # the [tolerance] table widened P50's tolerance: 10 % is now within it
    assert got[("baseline", "latency.p50_ms")] == "unchanged"
    assert got[("baseline", "latency.p99_ms")] == "regressed"
    assert report.exit_code == ExitCode.USAGE  # an error outranks a regression
    missing = next(v for v in report.verdicts if v.metric == "power.mean_w")
    assert "latency.*" in missing.message and "throughput.*" in missing.message


def test_gate_reports_quality_warnings_of_both_results() -> None:
    noisy = make_result(latency_samples(400, seed=2, sigma=0.4))
    report = gate(noisy, baseline=make_result(n=100, seed=1))
    got = {(w.source, w.code) for w in report.warnings}
    assert ("result", "high-variation") in got
    assert ("baseline", "few-samples") in got


def test_gate_is_deterministic() -> None:
    r = make_result(seed=2)
    assert gate(r, baseline=BASE) == gate(r, baseline=BASE)


def test_module_part_tells_agx_32gb_from_64gb() -> None:
    # both devkits report the same device-tree model string; only the module part differs
    other = make_result(seed=2, device={**JETSON, "module_part": "P3701-0004"})
    keys = {k for k, _, _ in environment_differences(other, BASE)}
    assert keys == {"device.module_part"}


# -- pinned by mutation testing (benchmarks/mutate.py) ------------------------------------------


def test_the_percentile_ci_is_the_95_percent_bootstrap_interval() -> None:
    # an A/A comparison with a tiny tolerance: P99 moves by chance, the 95 % interval holds 1
    r = make_result(seed=2)
    v = compare(r, BASE, metrics=["latency.p99_ms"], tolerances={"latency.p99_ms": 0.001})[0]
    expected = bootstrap_ratio_ci(
        BASE.samples["latency"], r.samples["latency"], q=99.0, confidence=0.95, seed=0
    )
    assert v.ci == expected
    assert v.ci is not None and v.ci[0] < 1.0 < v.ci[1]
    assert v.status == "inconclusive"
    assert "0.2% lower than the baseline, beyond the 0.1% tolerance" in v.message
    assert "the 95% bootstrap CI of the ratio is [0.983, 1.012], not below 1" in v.message


@pytest.mark.parametrize(
    ("scale", "status", "bound_text"),
    [(1.04, "regressed", "above 1"), (1 / 1.04, "improved", "below 1")],
)
def test_beyond_tolerance_and_an_interval_clear_of_one_decides(
    scale: float, status: str, bound_text: str
) -> None:
    # 3.8 % slower (4.1 % faster) than the baseline, beyond a 3 % tolerance; the interval
    # clears 1 but not 1.03 (0.97): the change is real and its estimate beyond the tolerance
    r = make_result(latency_samples(2000, seed=2) * scale)
    v = compare(r, BASE, metrics=["latency.p99_ms"], tolerances={"latency.p99_ms": 0.03})[0]
    assert v.ci is not None and abs(v.delta_pct or 0.0) > 3.0
    if scale > 1:
        assert 1.0 < v.ci[0] < 1.03
    else:
        assert 0.97 < v.ci[1] < 1.0
    assert v.status == status and v.message.endswith(bound_text), v.message


@pytest.mark.parametrize("scale", [1.04, 1 / 1.04])
def test_a_real_4_percent_change_within_a_5_percent_tolerance_is_unchanged(scale: float) -> None:
    # the same real, significant 4 % change against a 5 % tolerance: within it, unchanged
    r = make_result(latency_samples(2000, seed=2) * scale)
    v = compare(r, BASE, metrics=["latency.p99_ms"], tolerances={"latency.p99_ms": 0.05})[0]
    assert v.ci is not None and (v.ci[0] > 1.0 or v.ci[1] < 1.0)
    assert v.status == "unchanged" and "within the 5% tolerance" in v.message


@pytest.mark.parametrize(
    ("scale", "bound_text"), [(1.02, "not above 1"), (1 / 1.02, "not below 1")]
)
def test_beyond_tolerance_but_an_interval_holding_one_is_inconclusive(
    scale: float, bound_text: str
) -> None:
    # exactly 2 % slower (faster) than the baseline's own 400 samples, beyond a 1 % tolerance:
    # resampling each side on its own, the interval still holds 1, so it is not shown real
    r = make_result(latency_samples(400, seed=5) * scale)
    b = make_result(latency_samples(400, seed=5))
    v = compare(r, b, metrics=["latency.p99_ms"], tolerances={"latency.p99_ms": 0.01})[0]
    assert v.ci is not None and v.ci[0] < 1.0 < v.ci[1]
    assert abs(v.delta_pct or 0.0) > 1.0
    assert v.status == "inconclusive" and bound_text in v.message, v.message


def test_significant_but_the_other_way_is_inconclusive() -> None:
    # most samples 3 % faster, 2 % of them 200 ms: the mean (and so fps) is worse, the ranks
    # say faster; a Mann–Whitney test cannot confirm a change of the mean in its direction
    x = latency_samples(2000, seed=2) * 0.97
    x[::50] = 200.0
    verdicts = compare(make_result(x), BASE, metrics=["latency.mean_ms", "throughput.fps"])
    for v in verdicts:
        assert v.status == "inconclusive", v
        assert v.p_value is not None and v.p_value < 1e-10
        assert "but the samples moved the other way" in v.message
    assert [v.metric for v in verdicts] == ["latency.mean_ms", "throughput.fps"]
    assert verdicts[0].delta_pct is not None and verdicts[0].delta_pct > 5
    assert verdicts[1].delta_pct is not None and verdicts[1].delta_pct < -5


def test_mann_whitney_needs_ten_samples_a_side() -> None:
    def mean_verdict(n: int):
        r = make_result(latency_samples(n, seed=2) * 1.5)
        return compare(r, make_result(latency_samples(n, seed=1)), metrics=["latency.mean_ms"])[0]

    few = mean_verdict(9)
    assert few.status == "inconclusive" and few.p_value is None
    assert "too few 'latency' samples for a Mann–Whitney test (9 baseline, 9 result" in few.message
    assert mean_verdict(10).status == "regressed"


def test_every_default_tolerance() -> None:
    assert default_tolerance("throughput.fps") == 0.05
    assert default_tolerance("energy.mj_per_inference") == 0.10
    assert default_tolerance("power.mean_w") == 0.10
    assert default_tolerance("gpu_compute.p99_ms") == 0.05
    assert default_tolerance("accuracy.cosine") == 0.05
    assert DEFAULT_BASELINE_METRICS[:3] == ("latency.p50_ms", "latency.p95_ms", "latency.p99_ms")
    assert direction("cv") == "lower" and direction("stages.a.latency.p99_ms") == "lower"


def test_check_comparable_refuses_by_default() -> None:
    other = make_result(seed=2, device={**JETSON, "l4t": "36.4.0"})
    with pytest.raises(IncomparableError):
        check_comparable(other, BASE)
    assert check_comparable(BASE, BASE) == ()


def _staged(scale: float, seed: int) -> Result:
    cam = latency_samples(2000, seed=seed, median_ms=5.0) * scale
    head = latency_samples(2000, seed=seed + 10, median_ms=3.0) * scale
    return dataclasses.replace(
        make_result(seed=seed),
        stages={
            # a stage's samples by series name, or one list of host latencies
            "cam": {"latency": summarize(cam).to_dict(), "samples": {"latency": list(cam)}},
            "head": {"latency": summarize(head).to_dict(), "samples": list(head)},
        },
    )


STAGE_METRICS = ["stages.cam.latency.p99_ms", "stages.head.latency.mean_ms"]


def test_pipeline_stage_metrics_against_a_baseline() -> None:
    base = _staged(1.0, 1)
    assert statuses(compare(_staged(1.0, 2), base, metrics=STAGE_METRICS)) == {
        "stages.cam.latency.p99_ms": "unchanged",
        "stages.head.latency.mean_ms": "unchanged",
    }
    slow = compare(_staged(1.2, 2), base, metrics=STAGE_METRICS)
    assert statuses(slow) == {
        "stages.cam.latency.p99_ms": "regressed",
        "stages.head.latency.mean_ms": "regressed",
    }
    assert slow[0].ci is not None and slow[1].p_value is not None and slow[1].ci is None


def test_a_zero_baseline_has_no_relative_change() -> None:
    zero = make_result(seed=1, power={"mean_w": 0.0})
    both = compare(make_result(seed=2, power={"mean_w": 0.0}), zero, metrics=["power.mean_w"])[0]
    assert both.status == "unchanged" and both.message == "0 in both" and both.delta_pct is None
    one = compare(make_result(seed=2, power={"mean_w": 3.0}), zero, metrics=["power.mean_w"])[0]
    assert one.status == "inconclusive" and "the baseline value is 0" in one.message


W = [30.0, 31.0, 32.5]


@pytest.mark.parametrize(
    "power",
    [
        {"samples_w": W},
        {"trace_w": W},
        {"trace": {"t_s": [0.0, 0.1, 0.2], "total_w": W}},
        {"trace": {"t_s": [0.0, 0.1, 0.2], "watts": W}},
        {"trace": [[0.0, 30.0], [0.1, 31.0], [0.2, 32.5]]},
        {"trace": [{"t": 0.0, "w": 30.0}, {"t": 0.1, "w": 31.0}, {"t": 0.2, "w": 32.5}]},
        {"trace": [30.0, 31.0, 32.5]},
        {"trace": [30.0, float("nan"), 31.0, 32.5]},
    ],
)
def test_power_sample_formats(power: dict) -> None:
    got = _power_samples(make_result(power=power))
    assert got is not None and got.tolist() == W


@pytest.mark.parametrize(
    "power",
    [
        None,
        {"mean_w": 30.0},
        {"trace": {"t_s": [0.0], "volts": [5.0]}},
        {"trace": [{"t": 0.0, "volts": 5.0}]},
        {"trace": "30,31"},
        {"trace": []},
        {"samples_w": "30"},
        {"samples_w": [float("nan")]},
    ],
)
def test_power_without_usable_samples(power: dict | None) -> None:
    assert _power_samples(make_result(power=power)) is None


def test_power_samples_in_a_list_trace_decide_the_verdict() -> None:
    rng = np.random.default_rng(0)
    base_w, hot_w = 30 + rng.normal(0, 0.5, 400), 36 + rng.normal(0, 0.5, 400)

    def with_pairs(w: np.ndarray, seed: int) -> Result:
        trace = [[i * 0.05, float(x)] for i, x in enumerate(w)]
        return make_result(seed=seed, power={"mean_w": float(w.mean()), "trace": trace})

    assert statuses(compare(with_pairs(hot_w, 2), with_pairs(base_w, 1)))["power.mean_w"] == (
        "regressed"
    )


def test_series_names_split_into_series_and_statistic() -> None:
    assert _split_series("latency.p99_ms") == ("latency", "p99_ms")
    assert _split_series("stages.cam.latency.p99_ms") == ("stages.cam.latency", "p99_ms")
    assert _split_series("stages.cam.p99_ms") is None
    assert _split_series("a.b.c.p99_ms") is None
    assert _split_series("p99_ms") is None


def _with(base: Result, **kw: Any) -> Result:
    return dataclasses.replace(base, **kw)


def test_default_metrics_skip_power_without_raw_samples_in_the_baseline() -> None:
    base = make_result(seed=1, power={"mean_w": 30.0})
    got = statuses(compare(make_result(seed=2, power={"mean_w": 30.0}), base))
    assert "power.mean_w" not in got and "latency.p99_ms" in got


def test_errors_name_which_side_lacks_the_metric_or_its_direction() -> None:
    r = make_result(seed=2, power={"mean_w": 30.0})
    (v,) = compare(r, BASE, metrics=["power.mean_w"])
    assert v.status == "error" and v.message.startswith("the baseline has no such metric")
    acc = _with(make_result(seed=2), accuracy={"cosine": 0.99})
    (v,) = compare(acc, _with(BASE, accuracy={"cosine": 0.999}), metrics=["accuracy.cosine"])
    assert v.status == "error" and v.message.startswith("no known better direction")


def test_exactly_at_the_tolerance_is_unchanged_in_both_directions() -> None:
    # values whose ratios are exact in binary: delta is exactly +-25 %
    base = _with(make_result(seed=1, power={"mean_w": 1.0}), stages={"cam": {"fps": 10.0}})
    tol = {"power.mean_w": 0.25, "stages.cam.fps": 0.25}
    for w, fps in ((1.25, 12.5), (0.75, 7.5)):
        r = _with(make_result(seed=2, power={"mean_w": w}), stages={"cam": {"fps": fps}})
        got = compare(r, base, metrics=list(tol), tolerances=tol)
        assert [v.status for v in got] == ["unchanged", "unchanged"], got
        assert [abs(v.delta_pct or 0.0) for v in got] == [25.0, 25.0]


def test_metrics_without_a_test_are_judged_on_the_point_estimate() -> None:
    # a stage's fps (no raw samples for it), the maximum latency, a soak figure and power with raw
    # samples on one side only: never a significance test
    base = _with(
        make_result(seed=1, power={"mean_w": 30.0, "samples_w": [30.0] * 50}),
        stages={"cam": {"fps": 10.0}},
        extra={"soak": {"p99_ms": 10.0}},
    )
    near = _with(
        make_result(seed=2, power={"mean_w": 30.3}),
        stages={"cam": {"fps": 10.1}},
        extra={"soak": {"p99_ms": 10.2}},
    )
    names = ["stages.cam.fps", "latency.max_ms", "soak.p99_ms", "power.mean_w"]
    got = compare(near, base, metrics=names, tolerances={"latency.max_ms": 0.5})
    assert [v.status for v in got] == ["unchanged"] * 4, got
    far = _with(near, stages={"cam": {"fps": 5.0}}, extra={"soak": {"p99_ms": 20.0}})
    far = _with(far, power={"mean_w": 45.0})
    got = compare(far, base, metrics=["stages.cam.fps", "soak.p99_ms", "power.mean_w"])
    for v in got:
        assert v.status == "inconclusive" and "has no raw samples to test significance" in v.message
    assert len(got) == 3


def test_exactly_the_samples_a_p99_interval_needs_are_enough() -> None:
    r, b = make_result(latency_samples(368, seed=2)), make_result(latency_samples(368, seed=1))
    (v,) = compare(r, b, metrics=["latency.p99_ms"])
    assert v.status == "unchanged" and v.ci is not None


def test_the_ci_must_be_strictly_beyond_one() -> None:
    # the interval ends exactly on 1: the change is not shown
    ok, text = _Test("ci", ci=(1.0, 1.5)).significant(larger=True, alpha=0.05)
    assert not ok and text.endswith("[1.000, 1.500], not above 1")
    ok, text = _Test("ci", ci=(0.5, 1.0)).significant(larger=False, alpha=0.05)
    assert not ok and text.endswith("[0.500, 1.000], not below 1")
    ok, text = _Test("ci", ci=(1.0001, 1.5)).significant(larger=True, alpha=0.05)
    assert ok and text.endswith("[1.000, 1.500], above 1")
    ok, text = _Test("ci", ci=(0.5, 0.9999)).significant(larger=False, alpha=0.05)
    assert ok and text.endswith("[0.500, 1.000], below 1")
    # the direction asked for is the one tested: an interval above 1 does not show "smaller"
    assert not _Test("ci", ci=(1.2, 1.5)).significant(larger=False, alpha=0.05)[0]
    assert not _Test("ci", ci=(0.5, 0.8)).significant(larger=True, alpha=0.05)[0]
    assert (
        "the 90% bootstrap CI" in _Test("ci", ci=(1.2, 1.5)).significant(larger=True, alpha=0.10)[1]
    )
    # the kind decides the test, not whether an interval is present
    ok, text = _Test("mw", p_value=0.01, effect=0.9, ci=(0.1, 0.2), what="w").significant(
        larger=True, alpha=0.05
    )
    assert ok and text == "Mann–Whitney on the w: p=0.01"


@pytest.mark.parametrize(
    ("p", "effect", "larger", "ok", "text"),
    [
        (0.01, 0.9, True, True, "p=0.01"),  # slower samples, larger metric: agrees
        (0.01, 0.5, False, True, "p=0.01"),  # an effect of exactly one half is "not larger"
        (0.05, 0.9, True, False, "p=0.05"),  # p equal to alpha is not significant
        (0.05, 0.1, True, False, "p=0.05"),  # ... and then no "other way" either
        (0.5, 0.1, True, False, "p=0.5"),  # not significant: the direction is not remarked on
        (0.01, 0.1, True, False, "p=0.01 but the samples moved the other way"),
        (0.001, 0.9, True, True, "p=0.001"),
        (0.0007, 0.9, True, True, "p<0.001"),
        (0.0004, 0.9, True, True, "p<0.001"),
    ],
)
def test_mann_whitney_evidence(p: float, effect: float, larger: bool, ok: bool, text: str) -> None:
    got = _Test("mw", p_value=p, effect=effect, what="w").significant(larger=larger, alpha=0.05)
    assert got == (ok, f"Mann–Whitney on the w: {text}")
