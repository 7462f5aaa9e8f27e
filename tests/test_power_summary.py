"""summarize_power / power_warnings: every number of the power section pinned to its exact value.

The traces are small and hand-computed so that a changed operator, constant or boundary in
orinbench/telemetry/power.py's summary functions changes at least one asserted value (issue 13:
mutation testing found the idle mean could become a plain mean and a 0 s idle window passed).
"""

from __future__ import annotations

import json

import pytest

from orinbench.errors import PowerSourceError, UsageError
from orinbench.results.schema import Environment, ModelRef, Result, RunConfig
from orinbench.telemetry.power import (
    MIN_WINDOW_CONVERSIONS,
    MIN_WINDOW_SAMPLES,
    SLOW_PERIOD_FACTOR,
    PowerSample,
    PowerTrace,
    power_warnings,
    summarize_power,
)
from orinbench.telemetry.powertrace import (
    achieved_period,
    drop_repeats,
    resolution,
    sensor_notes,
    total_from_rails,
)


def trace(
    points,
    *,
    rails=None,
    period=0.1,
    achieved=None,
    duration=None,
    source="sysfs",
    counter=None,
    notes=(),
    resolution_s=None,
    sensor_samples=None,
    repeats=0,
):
    samples = tuple(
        PowerSample(t_s=t, total_w=w, rails=(rails(t, w) if rails else {})) for t, w in points
    )
    return PowerTrace(
        source=source,
        samples=samples,
        period_s_requested=period,
        period_s_achieved=achieved if achieved is not None else period,
        duration_s=duration if duration is not None else (points[-1][0] if points else 0.0),
        total_of="test",
        notes=tuple(notes),
        energy_counter_j=counter,
        resolution_s=resolution_s,
        sensor_samples=sensor_samples,
        repeats_dropped=repeats,
    )


# -- the integral, the time-weighted mean, P95 and peak -------------------------------------------
def test_constant_power_gives_power_times_time():
    tr = trace([(i / 10, 10.0) for i in range(21)])
    s = summarize_power(tr, inferences=100, window_s=2.0)
    assert s["energy"] == {"j": 20.0, "mj_per_inference": 200.0}
    assert (s["mean_w"], s["p95_w"], s["peak_w"]) == (10.0, 10.0, 10.0)
    assert s["samples"] == 21 and s["window_s"] == 2.0


def test_ramp_is_integrated_exactly_and_p95_interpolates():
    # P(t) = 5 + 5 t on [0, 2]: integral 5*2 + 2.5*4 = 20 J; the samples come unsorted
    pts = [(t, 5 + 5 * t) for t in (1.0, 0.0, 2.0, 0.5, 1.5)]
    s = summarize_power(trace(pts, period=0.5), inferences=4, window_s=2.0)
    assert s["energy"] == {"j": 20.0, "mj_per_inference": 5000.0}
    assert s["mean_w"] == 10.0
    # samples 5, 7.5, 10, 12.5, 15: rank 0.95 * 4 = 3.8 -> 12.5 + 0.8 * 2.5
    assert s["p95_w"] == 14.5
    assert s["peak_w"] == 15.0
    assert s["trace"]["t_s"] == [1.0, 0.0, 2.0, 0.5, 1.5]  # the raw trace keeps the order


def test_samples_exactly_on_the_window_edges_are_inside():
    # window [0, 1]; 50 W at 0, 1 W at 0.5, 40 W at 1; 100 W outside on both sides
    pts = [(-0.5, 100.0), (0.0, 50.0), (0.5, 1.0), (1.0, 40.0), (1.5, 100.0)]
    s = summarize_power(trace(pts, duration=1.0), inferences=1, window_s=1.0)
    assert s["samples"] == 3
    assert s["peak_w"] == 50.0  # the sample at exactly t = 0
    # [1, 40, 50]: rank 1.9 -> 40 + 0.9 * 10 (the sample at exactly t = window counts)
    assert s["p95_w"] == 49.0
    # 0.5 * (50 + 1) / 2 + 0.5 * (1 + 40) / 2
    assert s["energy"]["j"] == 23.0 and s["mean_w"] == 23.0


def test_edges_are_interpolated_between_samples_outside_the_window():
    # 0 W at -0.5 s, 10 W at 0.5 s and 1.5 s, 0 W at 2.5 s; window [0, 2]:
    # the curve is 5 W at 0 and 2 s -> 3.75 + 10 + 3.75 = 17.5 J
    tr = trace([(-0.5, 0.0), (0.5, 10.0), (1.5, 10.0), (2.5, 0.0)], period=1.0, duration=2.0)
    s = summarize_power(tr, inferences=10, window_s=2.0)
    assert s["energy"] == {"j": 17.5, "mj_per_inference": 1750.0}
    assert s["mean_w"] == 8.75
    assert s["samples"] == 2  # only those inside the window count ...
    assert (s["p95_w"], s["peak_w"]) == (10.0, 10.0)  # ... and only they give P95 / peak
    assert s["trace"]["t_s"] == [-0.5, 0.5, 1.5, 2.5]  # the raw trace keeps the edge samples


def test_single_sample_is_held_over_the_window():
    s = summarize_power(trace([(0.3, 7.0)]), inferences=1, window_s=1.0)
    assert s["energy"]["j"] == 7.0 and s["mean_w"] == 7.0
    assert s["period_s"] == 0.1  # the trace's achieved period, as given


def test_window_shorter_than_the_period_uses_interpolated_edges():
    # samples at -1 s (0 W) and +1 s (10 W); window [0, 0.5]: 5 W -> 7.5 W
    s = summarize_power(trace([(-1.0, 0.0), (1.0, 10.0)], period=2.0), inferences=5, window_s=0.5)
    assert s["energy"]["j"] == 3.125 and s["mean_w"] == 6.25
    assert s["samples"] == 0
    assert s["peak_w"] == 7.5
    assert s["p95_w"] == 7.375  # of the two edge values 5 and 7.5
    assert power_warnings(s)[0].code == "power-sampling"


def test_irregular_sampling_mean_is_time_weighted():
    # 10 W for the first second sampled densely, 20 W for the next sampled twice: a plain mean of
    # the samples would be 10.19 W
    pts = [(i / 100, 10.0) for i in range(101)] + [(1.001, 20.0), (2.0, 20.0)]
    s = summarize_power(trace(pts), inferences=1, window_s=2.0)
    # 1 s at 10 W + 1 ms ramp (15 W) + 0.999 s at 20 W = 29.995 J
    assert s["energy"]["j"] == 29.995
    assert s["mean_w"] == 14.9975
    assert s["peak_w"] == 20.0


def test_duplicate_timestamps_keep_the_last_reading():
    s = summarize_power(
        trace([(0.0, 5.0), (1.0, 9.0), (1.0, 10.0), (2.0, 10.0)]), inferences=1, window_s=2.0
    )
    assert s["energy"]["j"] == 7.5 + 10.0
    assert s["samples"] == 3  # the two readings at 1.0 s are one point of the curve
    assert s["p95_w"] == 10.0


# -- rails ---------------------------------------------------------------------------------------
def test_rails_have_their_own_statistics_and_missing_readings_stay_missing():
    def rails(t, w):
        out = {"VDD_SOC": 3.0 + t, "VDD_IN": w}
        if t == 1.0:
            out["VDD_CPU_GPU_CV"] = 2.0  # one reading only: held over the window
        return out

    tr = trace([(t, 10.0) for t in (0.0, 1.0, 2.0)], rails=rails, period=1.0)
    s = summarize_power(tr, inferences=2, window_s=2.0)
    assert list(s["rails"]) == ["VDD_CPU_GPU_CV", "VDD_IN", "VDD_SOC"]  # sorted
    assert s["rails"]["VDD_SOC"] == {"mean_w": 4.0, "p95_w": 4.9, "peak_w": 5.0}
    assert s["rails"]["VDD_IN"] == {"mean_w": 10.0, "p95_w": 10.0, "peak_w": 10.0}
    assert s["rails"]["VDD_CPU_GPU_CV"] == {"mean_w": 2.0, "p95_w": 2.0, "peak_w": 2.0}
    assert s["trace"]["rails"]["VDD_SOC"] == [3.0, 4.0, 5.0]
    assert s["trace"]["rails"]["VDD_CPU_GPU_CV"] == [None, 2.0, None]
    assert s["trace"]["total_w"] == [10.0, 10.0, 10.0]


# -- rounding ------------------------------------------------------------------------------------
def test_figures_are_rounded_to_their_documented_digits():
    third = 1.0 / 3.0
    tr = trace(
        [(0.123456789, third), (1.5, third)],
        achieved=0.123456789,
        duration=1.5,
        counter=0.1234567891,
    )
    idle = trace([(0.0, third / 2), (1.23456, third / 2)], duration=1.23456)
    s = summarize_power(tr, inferences=3, window_s=1.0000016, idle=idle)
    assert s["mean_w"] == 0.3333 and s["p95_w"] == 0.3333 and s["peak_w"] == 0.3333  # 4 digits
    assert s["energy"]["j"] == 0.333334  # 6 digits (1.0000016 s x 1/3 W = 0.33333387 J)
    assert s["energy"]["mj_per_inference"] == 111.111289
    assert s["energy"]["counter_j"] == 0.123457
    assert s["period_s"] == 0.123457 and s["window_s"] == 1.000002
    assert s["trace"]["t_s"] == [0.12346, 1.5]  # 5 digits
    assert s["trace"]["total_w"] == [0.3333, 0.3333]
    assert s["idle_mean_w"] == 0.1667 and s["idle_s"] == 1.235  # 3 digits
    assert s["above_idle_mean_w"] == 0.1667
    assert s["energy"]["above_idle_j"] == 0.166667
    assert s["energy"]["above_idle_mj_per_inference"] == 55.555644


# -- idle ----------------------------------------------------------------------------------------
def test_idle_gives_power_and_energy_above_idle():
    idle = trace([(t / 10, 3.0) for t in range(11)], duration=1.0)
    run = trace([(t / 10, 10.0) for t in range(21)])
    s = summarize_power(run, inferences=100, window_s=2.0, idle=idle)
    assert s["idle_mean_w"] == 3.0 and s["idle_s"] == 1.0
    assert s["above_idle_mean_w"] == 7.0
    assert s["energy"]["above_idle_j"] == 14.0
    assert s["energy"]["above_idle_mj_per_inference"] == 140.0


def test_idle_mean_is_time_weighted_not_a_plain_mean():
    # 2 W sampled three times in the first 0.2 s, a ramp to 6 W at 1 s, 6 W held to 2 s:
    # (0.4 + 3.2 + 6) / 2 = 4.8 W; the plain mean of the samples would be 3 W
    idle = trace([(0.0, 2.0), (0.1, 2.0), (0.2, 2.0), (1.0, 6.0)], duration=2.0)
    run = trace([(0.0, 10.0), (1.0, 10.0)])
    s = summarize_power(run, inferences=4, window_s=1.0, idle=idle)
    assert s["idle_mean_w"] == 4.8
    assert s["above_idle_mean_w"] == 5.2
    assert s["energy"]["above_idle_j"] == 5.2
    assert s["energy"]["above_idle_mj_per_inference"] == 1300.0
    assert s["idle_s"] == 2.0


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_idle_window_without_duration_is_an_error(duration):
    idle = trace([(0.0, 2.0), (0.5, 4.0)], duration=duration)
    with pytest.raises(PowerSourceError) as exc:
        summarize_power(trace([(0.0, 10.0)]), inferences=1, window_s=1.0, idle=idle)
    assert "idle power trace" in str(exc.value) and exc.value.exit_code == 2


def test_idle_without_samples_is_an_error():
    with pytest.raises(PowerSourceError, match="no idle power samples"):
        summarize_power(trace([(0.0, 1.0)]), inferences=1, window_s=1.0, idle=trace([]))


# -- what is and is not in the section -----------------------------------------------------------
def test_no_inferences_gives_no_per_inference_energy():
    idle = trace([(0.0, 1.0)], duration=1.0)
    s = summarize_power(trace([(0.0, 4.0), (1.0, 4.0)]), inferences=0, window_s=1.0, idle=idle)
    assert s["energy"]["j"] == 4.0
    assert s["energy"]["mj_per_inference"] is None
    assert s["energy"]["above_idle_j"] == 3.0
    assert s["energy"]["above_idle_mj_per_inference"] is None


def test_hardware_counter_is_reported_beside_the_integral_even_when_zero():
    s = summarize_power(trace([(0.0, 10.0), (1.0, 10.0)], counter=9.9), inferences=1, window_s=1.0)
    assert s["energy"]["counter_j"] == 9.9
    zero = summarize_power(trace([(0.0, 1.0)], counter=0.0), inferences=1, window_s=1.0)
    assert zero["energy"]["counter_j"] == 0.0
    none = summarize_power(trace([(0.0, 1.0)]), inferences=1, window_s=1.0)
    assert "counter_j" not in none["energy"]


def test_notes_sensor_and_period_fields_pass_through():
    tr = trace(
        [(0.0, 1.0), (1.0, 1.0)],
        notes=("a note",),
        resolution_s=0.43,
        sensor_samples=512,
        repeats=7,
        achieved=0.0,
    )
    s = summarize_power(tr, inferences=1, window_s=1.0)
    assert s["notes"] == ["a note"]
    assert (s["resolution_s"], s["sensor_samples"], s["repeats_dropped"]) == (0.43, 512, 7)
    assert s["period_s"] is None and s["period_s_requested"] == 0.1
    assert (s["source"], s["total_of"]) == ("sysfs", "test")
    assert "notes" not in summarize_power(trace([(0.0, 1.0)]), inferences=1, window_s=1.0)


def test_no_samples_is_an_error_not_a_zero():
    with pytest.raises(PowerSourceError) as exc:
        summarize_power(trace([], period=0.25), inferences=10, window_s=1.5)
    assert exc.value.exit_code == 2
    assert "no power samples from sysfs" in str(exc.value)
    assert "lasted 1.5 s" in str(exc.value) and "period is 0.25 s" in str(exc.value)


@pytest.mark.parametrize("window", [0.0, -1.0, float("nan")])
def test_bad_window_is_a_usage_error(window):
    with pytest.raises(UsageError, match="power window must be > 0 s"):
        summarize_power(trace([(0.0, 1.0)]), inferences=1, window_s=window)


def test_negative_inference_count_is_a_usage_error():
    with pytest.raises(UsageError, match="inference count must be >= 0, not -1"):
        summarize_power(trace([(0.0, 1.0)]), inferences=-1, window_s=1.0)


# -- quality warnings ----------------------------------------------------------------------------
def _summary(**over):
    base = {
        "source": "sysfs",
        "samples": MIN_WINDOW_SAMPLES,
        "window_s": 10.0,
        "period_s": 0.05,
        "period_s_requested": 0.05,
        "resolution_s": None,
    }
    return {**base, **over}


def test_constants_are_what_the_docs_say():
    assert (MIN_WINDOW_SAMPLES, MIN_WINDOW_CONVERSIONS, SLOW_PERIOD_FACTOR) == (5, 5, 2.0)


def test_sample_count_warning_starts_below_five():
    assert power_warnings(_summary()) == []
    w = power_warnings(_summary(samples=MIN_WINDOW_SAMPLES - 1))
    assert [x.code for x in w] == ["power-sampling"]
    assert w[0].message.startswith("only 4 distinct power readings from sysfs in the 10 s window")
    (bare,) = power_warnings({"source": "x"})  # a section without counts: nothing assumed
    assert bare.message.startswith("only 0 distinct power readings from x in the 0 s window")


def test_short_window_warning_counts_sensor_refreshes():
    # 5 refreshes of 0.43 s = 2.15 s: exactly that is enough, a little less is not
    assert power_warnings(_summary(window_s=2.15, resolution_s=0.43, period_s=0.43)) == []
    w = power_warnings(_summary(window_s=2.14, resolution_s=0.43, period_s=0.43))
    assert len(w) == 1 and w[0].code == "power-sampling"
    assert "2.14 s window is shorter than 5 refreshes" in w[0].message
    assert "one every 0.43 s" in w[0].message and "at least 2.15 s" in w[0].message
    # unknown resolution: no claim about refreshes
    assert power_warnings(_summary(window_s=0.5, resolution_s=None)) == []


def test_slow_period_warning_is_relative_to_the_sensor_not_only_the_request():
    # more than twice the requested 0.05 s, but the sensor refreshes every 0.43 s: not slow
    assert power_warnings(_summary(period_s=0.45, resolution_s=0.43)) == []
    assert power_warnings(_summary(period_s=0.86, resolution_s=0.43)) == []  # exactly 2x
    slow = power_warnings(_summary(period_s=0.87, resolution_s=0.43))
    assert len(slow) == 1
    assert slow[0].message.startswith("sysfs sampled every 0.87 s although 0.43 s was expected")
    # without a known sensor, the requested period is the yardstick
    assert power_warnings(_summary(period_s=0.1)) == []  # exactly 2x
    w = power_warnings(_summary(period_s=0.11))
    assert len(w) == 1 and "although 0.05 s was expected" in w[0].message
    # the requested period rules when it is the slower one
    assert power_warnings(_summary(period_s=1.0, period_s_requested=0.5, resolution_s=0.43)) == []
    assert power_warnings(_summary(period_s=None)) == []


def test_slow_sampling_of_a_real_trace_is_warned_about():
    tr = PowerTrace(
        "jtop",
        tuple(PowerSample(float(t), 5.0) for t in range(11)),
        period_s_requested=0.1,
        period_s_achieved=1.0,
        duration_s=10.0,
    )
    s = summarize_power(tr, inferences=10, window_s=10.0)
    msgs = [w.message for w in power_warnings(s)]
    assert msgs == ["jtop sampled every 1 s although 0.1 s was expected (another client may have "
                    "set the jtop interval, or the sensor is slow)"]  # fmt: skip
    dense = summarize_power(trace([(i / 10, 10.0) for i in range(21)]), inferences=1, window_s=2.0)
    assert power_warnings(dense) == []


# -- the lower layer (powertrace) ----------------------------------------------------------------
def test_total_is_the_input_rail_when_present_else_the_sum():
    total, what = total_from_rails({"VDD_IN": 12.0, "VDD_CPU_GPU_CV": 5.0, "VDD_SOC": 3.0})
    assert total == 12.0 and what == "VDD_IN rail (module input; carrier board not included)"
    total, what = total_from_rails({"POM_5V_IN": 4.0, "POM_5V_GPU": 1.0})
    assert total == 4.0 and what.startswith("POM_5V_IN rail")
    total, what = total_from_rails(
        {"VDD_GPU_SOC": 6.0, "VDD_CPU_CV": 2.0, "VIN_SYS_5V0": 3.0, "VDDQ_VDD2_1V8AO": 1.0}
    )
    assert total == 12.0
    assert what == (
        "sum of rails VDDQ_VDD2_1V8AO+VDD_CPU_CV+VDD_GPU_SOC+VIN_SYS_5V0 "
        "(module; carrier board not included)"
    )


def test_drop_repeats_keeps_new_values_and_one_reading_per_refresh():
    a, b = {"VDD_IN": 5.0}, {"VDD_IN": 6.0}
    # times exact in binary, so that a gap of exactly one refresh is exactly 0.5
    t = [0.0, 0.125, 0.25, 0.375, 0.75, 0.875, 1.25, 1.375]
    readings = list(zip(t, [a, a, b, b, b, b, b, a], strict=True))
    kept, dropped = drop_repeats(readings, 0.5)
    # 0.75 - 0.25 = 0.5 is a full refresh: kept; 1.25 - 0.75 likewise; 1.375 is a new value
    assert kept == [(0.0, a), (0.25, b), (0.75, b), (1.25, b), (1.375, a)]
    assert dropped == 3
    assert drop_repeats(readings, None) == (readings, 0)
    assert drop_repeats([], 0.43) == ([], 0)


def test_resolution_period_and_notes():
    assert resolution(0.05, 0.43) == 0.43
    assert resolution(1.0, 0.43) == 1.0
    assert resolution(0.05, None) is None
    assert achieved_period([0.0, 0.5, 0.5, 1.5]) == 0.75  # zero gaps ignored
    assert achieved_period([1.0]) is None and achieved_period([1.0, 1.0]) is None
    (note,) = sensor_notes(0.43, 512, 9)
    assert note.startswith("INA3221 refreshes every 0.43 s, 512 samples averaged per value")
    assert note.endswith("9 repeated readings of one conversion dropped")
    assert "unreadable" in sensor_notes(None, None, 0)[0]


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
    assert metrics["power.mean_w"] == 10.0
    assert metrics["power.peak_w"] == 10.0
    assert metrics["energy.mj_per_inference"] == 200.0
    assert not any(k.startswith("power.trace") for k in metrics)
