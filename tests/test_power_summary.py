"""summarize_power: energy over the window (edges interpolated), mean/P95/peak, rails, idle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orinbench.errors import PowerSourceError, UsageError
from orinbench.results.schema import Environment, ModelRef, Result, RunConfig
from orinbench.telemetry.power import (
    PowerSample,
    PowerTrace,
    power_warnings,
    summarize_power,
    total_from_rails,
)


def trace(points, *, rails=None, period=0.1, duration=None, source="sysfs", counter=None):
    samples = tuple(
        PowerSample(t_s=t, total_w=w, rails=(rails(t, w) if rails else {})) for t, w in points
    )
    return PowerTrace(
        source=source,
        samples=samples,
        period_s_requested=period,
        period_s_achieved=period,
        duration_s=duration if duration is not None else (points[-1][0] if points else 0.0),
        total_of="test",
        energy_counter_j=counter,
    )


def test_constant_power_gives_power_times_time():
    tr = trace([(i / 10, 10.0) for i in range(21)])
    s = summarize_power(tr, inferences=100, window_s=2.0)
    assert s["energy"]["j"] == pytest.approx(20.0)
    assert s["mean_w"] == pytest.approx(10.0)
    assert s["energy"]["mj_per_inference"] == pytest.approx(200.0)
    assert s["peak_w"] == pytest.approx(10.0)
    assert s["samples"] == 21


def test_ramp_is_integrated_exactly_and_p95_interpolates():
    # P(t) = 5 + 5 t on [0, 2]: integral 5*2 + 2.5*4 = 20 J
    tr = trace([(t, 5 + 5 * t) for t in (0.0, 0.5, 1.0, 1.5, 2.0)], period=0.5)
    s = summarize_power(tr, inferences=4, window_s=2.0)
    assert s["energy"]["j"] == pytest.approx(20.0)
    assert s["mean_w"] == pytest.approx(10.0)
    # samples 5, 7.5, 10, 12.5, 15: rank 0.95 * 4 = 3.8 -> 12.5 + 0.8 * 2.5
    assert s["p95_w"] == pytest.approx(14.5)
    assert s["peak_w"] == pytest.approx(15.0)


def test_edges_are_interpolated_between_samples_outside_the_window():
    # 0 W at -0.5 s, 10 W at 0.5 s and 1.5 s, 0 W at 2.5 s; window [0, 2]:
    # the curve is 5 W at 0 and 2 s -> 3.75 + 10 + 3.75 = 17.5 J
    tr = trace([(-0.5, 0.0), (0.5, 10.0), (1.5, 10.0), (2.5, 0.0)], period=1.0, duration=2.0)
    s = summarize_power(tr, inferences=10, window_s=2.0)
    assert s["energy"]["j"] == pytest.approx(17.5)
    assert s["mean_w"] == pytest.approx(8.75)
    assert s["samples"] == 2  # only those inside the window count ...
    assert s["peak_w"] == pytest.approx(10.0)  # ... and only they give P95 / peak
    assert len(s["trace"]["t_s"]) == 4  # the raw trace keeps the edge samples


def test_single_sample_is_held_over_the_window():
    s = summarize_power(trace([(0.3, 7.0)]), inferences=1, window_s=1.0)
    assert s["energy"]["j"] == pytest.approx(7.0)


def test_window_shorter_than_the_period_uses_interpolated_edges():
    # samples at -1 s (0 W) and +1 s (10 W); window [0, 0.5]: 5 W -> 7.5 W
    s = summarize_power(trace([(-1.0, 0.0), (1.0, 10.0)], period=2.0), inferences=5, window_s=0.5)
    assert s["energy"]["j"] == pytest.approx(3.125)
    assert s["samples"] == 0
    assert s["peak_w"] == pytest.approx(7.5)
    assert power_warnings(s)[0].code == "power-sampling"


def test_irregular_sampling_mean_is_time_weighted():
    # 10 W for the first second sampled densely, 20 W for the next sampled once at each end:
    # a plain sample mean would be pulled towards 10 W
    pts = [(i / 100, 10.0) for i in range(101)] + [(1.001, 20.0), (2.0, 20.0)]
    s = summarize_power(trace(pts), inferences=1, window_s=2.0)
    assert s["mean_w"] == pytest.approx(15.0, abs=0.01)
    assert np.mean([w for _, w in pts]) < 11.0


def test_rails_have_their_own_statistics():
    def rails(t, w):
        return {"VDD_IN": w, "VDD_SOC": 3.0 + t}

    tr = trace([(t, 10.0) for t in (0.0, 1.0, 2.0)], rails=rails, period=1.0)
    s = summarize_power(tr, inferences=2, window_s=2.0)
    assert set(s["rails"]) == {"VDD_IN", "VDD_SOC"}
    assert s["rails"]["VDD_SOC"]["mean_w"] == pytest.approx(4.0)
    assert s["rails"]["VDD_SOC"]["peak_w"] == pytest.approx(5.0)
    assert s["trace"]["rails"]["VDD_SOC"] == [3.0, 4.0, 5.0]


def test_idle_gives_power_and_energy_above_idle():
    idle = trace([(t / 10, 3.0) for t in range(11)], duration=1.0)
    run = trace([(t / 10, 10.0) for t in range(21)])
    s = summarize_power(run, inferences=100, window_s=2.0, idle=idle)
    assert s["idle_mean_w"] == pytest.approx(3.0)
    assert s["above_idle_mean_w"] == pytest.approx(7.0)
    assert s["energy"]["above_idle_j"] == pytest.approx(14.0)
    assert s["energy"]["above_idle_mj_per_inference"] == pytest.approx(140.0)


def test_hardware_counter_is_reported_beside_the_integral():
    s = summarize_power(trace([(0.0, 10.0), (1.0, 10.0)], counter=9.9), inferences=1, window_s=1.0)
    assert s["energy"]["counter_j"] == pytest.approx(9.9)


def test_duplicate_timestamps_do_not_break_the_integral():
    s = summarize_power(
        trace([(0.0, 5.0), (1.0, 9.0), (1.0, 10.0), (2.0, 10.0)]), inferences=1, window_s=2.0
    )
    assert s["energy"]["j"] == pytest.approx(7.5 + 10.0)


def test_no_samples_is_an_error_not_a_zero():
    with pytest.raises(PowerSourceError) as exc:
        summarize_power(trace([]), inferences=10, window_s=1.0)
    assert exc.value.exit_code == 2
    assert "no power samples" in str(exc.value)


def test_bad_window_is_a_usage_error():
    with pytest.raises(UsageError):
        summarize_power(trace([(0.0, 1.0)]), inferences=1, window_s=0.0)


def test_slow_sampling_is_warned_about():
    tr = PowerTrace(
        "jtop",
        tuple(PowerSample(t, 5.0) for t in np.arange(0, 10.01, 1.0)),
        period_s_requested=0.1,
        period_s_achieved=1.0,
        duration_s=10.0,
    )
    s = summarize_power(tr, inferences=10, window_s=10.0)
    msgs = [w.message for w in power_warnings(s)]
    assert any("sampled every 1 s although 0.1 s was requested" in m for m in msgs)
    dense = summarize_power(trace([(i / 10, 10.0) for i in range(21)]), inferences=1, window_s=2.0)
    assert power_warnings(dense) == []


def test_total_is_vdd_in_when_present_else_the_sum():
    total, what = total_from_rails({"VDD_IN": 12.0, "VDD_CPU_GPU_CV": 5.0, "VDD_SOC": 3.0})
    assert total == 12.0 and "VDD_IN" in what
    total, what = total_from_rails(
        {"VDD_GPU_SOC": 6.0, "VDD_CPU_CV": 2.0, "VIN_SYS_5V0": 3.0, "VDDQ_VDD2_1V8AO": 1.0}
    )
    assert total == pytest.approx(12.0) and what.startswith("sum of rails")


def test_summary_becomes_gate_metrics_and_valid_json():
    s = summarize_power(
        trace([(i / 10, 10.0) for i in range(21)], counter=20.0), inferences=100, window_s=2.0
    )
    text = json.dumps(s, allow_nan=False)  # results are written with allow_nan=False
    assert "NaN" not in text
    result = Result(
        tool_version="0",
        created_utc="2025-01-01T00:00:00Z",
        environment=Environment(
            host="h", cpu="c", os="o", python="3", backend="ort", backend_version="1"
        ),
        model=ModelRef(path="m.onnx", sha256="0" * 64, inputs=(), outputs=()),
        config=RunConfig(backend="ort"),
        samples={},
        stats={},
        throughput={},
        power=s,
    )
    metrics = result.metrics()
    assert metrics["power.mean_w"] == pytest.approx(10.0)
    assert metrics["power.peak_w"] == pytest.approx(10.0)
    assert metrics["energy.mj_per_inference"] == pytest.approx(200.0)
    assert not any(k.startswith("power.trace") for k in metrics)
