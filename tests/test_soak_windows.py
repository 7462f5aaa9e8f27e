"""Soak statistics on scripted data: drift, throttle events, thermal steady state."""

from __future__ import annotations

import pytest

from orinbench.results.schema import Environment, ModelRef, Result, RunConfig
from orinbench.soak.windows import (
    SoakWindow,
    drift_pct,
    steady_state_time,
    summarize_soak,
    throttle_events,
    throttle_monitored,
)
from orinbench.telemetry.conditions import ConditionsSample


def _w(i: int, temp: float | None, *, p99: float = 10.0, power: float | None = None) -> SoakWindow:
    return SoakWindow(
        index=i,
        t_s=10.0 * i,
        duration_s=10.0,
        iterations=100,
        p50_ms=p99 / 2,
        p99_ms=p99,
        fps=100.0,
        power_w=power,
        temp_c=temp,
    )


def test_drift_is_relative_to_the_first_window_in_percent() -> None:
    assert drift_pct(10.0, 12.5) == pytest.approx(25.0)
    assert drift_pct(8.0, 6.0) == pytest.approx(-25.0)
    assert drift_pct(None, 3.0) is None
    assert drift_pct(0.0, 3.0) is None


def test_steady_state_is_the_start_of_the_first_window_that_stays_in_the_band() -> None:
    # rises 60 -> 70 -> 75, then stays within 1 °C of the last window (75.4)
    temps = [60.0, 70.0, 75.0, 75.6, 75.2, 75.4]
    windows = [_w(i, t) for i, t in enumerate(temps)]
    assert steady_state_time(windows, tol_c=1.0) == pytest.approx(20.0)
    # a tighter band excludes 75.0 (0.4 away) only when tol < 0.4
    assert steady_state_time(windows, tol_c=0.3) == pytest.approx(30.0)


def test_steady_from_the_start_is_zero_and_still_rising_is_none() -> None:
    flat = [_w(i, 50.0 + 0.1 * i) for i in range(5)]
    assert steady_state_time(flat) == 0.0
    rising = [_w(i, 50.0 + 3.0 * i) for i in range(5)]
    assert steady_state_time(rising) is None  # only the last window is near itself
    assert steady_state_time([_w(0, 50.0)]) is None
    assert steady_state_time([_w(0, None), _w(1, None)]) is None


def test_a_late_excursion_resets_the_steady_state() -> None:
    temps = [70.0, 70.2, 70.1, 74.0, 70.3, 70.2]
    windows = [_w(i, t) for i, t in enumerate(temps)]
    assert steady_state_time(windows) == pytest.approx(40.0)


def _s(t: float, **kw: object) -> ConditionsSample:
    return ConditionsSample(t_s=t, **kw)  # type: ignore[arg-type]


def test_clock_drops_count_once_per_onset() -> None:
    clocks = [918, 918, 510, 510, 918, 918, 612, 918]
    events = throttle_events([_s(i * 0.5, gpu_freq_mhz=float(c)) for i, c in enumerate(clocks)])
    drops = [e for e in events if e.kind == "gpu-clock-drop"]
    assert [e.t_s for e in drops] == [1.0, 3.0]
    assert "510" in drops[0].detail


def test_clock_jitter_within_one_percent_is_no_event() -> None:
    clocks = [1000.0, 995.0, 1000.0, 992.0]
    assert throttle_events([_s(i, gpu_freq_mhz=c) for i, c in enumerate(clocks)]) == []


def test_cap_over_current_trip_and_cooling_events() -> None:
    samples = [
        _s(
            0.0,
            gpu_max_freq_mhz=918.0,
            oc_events=0,
            temperatures_c={"tj": 90.0},
            cooling={"gpu-balanced#1": 0},
        ),
        _s(
            1.0,
            gpu_max_freq_mhz=918.0,
            oc_events=2,
            temperatures_c={"tj": 96.0},
            cooling={"gpu-balanced#1": 0},
        ),
        _s(
            2.0,
            gpu_max_freq_mhz=714.0,
            oc_events=2,
            temperatures_c={"tj": 97.0},
            cooling={"gpu-balanced#1": 1},
        ),
    ]
    events = throttle_events(samples, trip_points_c={"tj": 95.5})
    kinds = [(e.kind, e.t_s, e.count) for e in events]
    assert ("over-current", 1.0, 2) in kinds
    assert ("trip-point", 1.0, 1) in kinds
    assert ("clock-cap", 2.0, 1) in kinds
    assert ("cooling", 2.0, 1) in kinds
    # the zone stayed above its trip at t=2: no second trip event
    assert sum(1 for k in kinds if k[0] == "trip-point") == 1
    summary = summarize_soak([_w(0, 90.0), _w(1, 96.0)], window_s=10.0, events=events)
    assert summary["throttle_events"] == 5  # 2 over-current + trip + cap + cooling


def test_summary_holds_drifts_and_becomes_soak_metrics() -> None:
    windows = [
        _w(0, 60.0, p99=10.0, power=20.0),
        _w(1, 70.0, p99=11.0, power=21.0),
        _w(2, 70.5, p99=12.0, power=22.0),
    ]
    summary = summarize_soak(windows, window_s=10.0, events=[])
    assert summary["p99_drift_pct"] == pytest.approx(20.0)
    assert summary["power_drift_pct"] == pytest.approx(10.0)
    assert summary["steady_state_s"] == pytest.approx(10.0)
    assert summary["duration_s"] == pytest.approx(30.0)
    assert [w["temp_c"] for w in summary["windows"]] == [60.0, 70.0, 70.5]
    m = _metrics(summary)
    assert m["soak.p99_drift_pct"] == pytest.approx(20.0)
    assert m["soak.power_drift_pct"] == pytest.approx(10.0)
    assert m["soak.throttle_events"] == 0.0
    assert not any(k.startswith("soak.windows") or k.startswith("soak.events") for k in m)


def test_single_window_has_no_drift_and_no_power_means_none() -> None:
    summary = summarize_soak([_w(0, None)], window_s=10.0)
    assert summary["p99_drift_pct"] is None and summary["power_drift_pct"] is None
    assert summary["steady_state_s"] is None
    with pytest.raises(ValueError):
        summarize_soak([], window_s=10.0)


def _metrics(summary: dict[str, object]) -> dict[str, float]:
    return Result(
        tool_version="0",
        created_utc="",
        samples={},
        stats={},
        throughput={},
        environment=Environment("h", "c", "o", "p", "onnxruntime", "1"),
        model=ModelRef("m.onnx", "0", (), ()),
        config=RunConfig(backend="onnxruntime"),
        extra={"soak": summary},
    ).metrics()


def test_unmonitored_throttling_is_no_metric_and_monitored_zero_is_one() -> None:
    windows = [_w(0, None), _w(1, None)]
    unmonitored = summarize_soak(windows, window_s=10.0)
    assert unmonitored["throttle_events"] is None and unmonitored["events"] == []
    assert "soak.throttle_events" not in _metrics(unmonitored)
    monitored = summarize_soak(windows, window_s=10.0, events=[])
    assert monitored["throttle_events"] == 0
    assert _metrics(monitored)["soak.throttle_events"] == 0.0


def test_throttling_is_monitored_only_with_a_reading_an_event_can_come_from() -> None:
    assert not throttle_monitored([])
    # what a conditions monitor reads on a machine without Jetson sysfs or NVML: nothing
    assert not throttle_monitored([_s(0.0), _s(0.5)])
    # a temperature without a trip point cannot show throttling
    assert not throttle_monitored([_s(0.0, temperatures_c={"cpu": 50.0})])
    assert throttle_monitored([_s(0.0, temperatures_c={"cpu": 50.0})], trip_points_c={"cpu": 95.0})
    assert throttle_monitored([_s(0.0), _s(0.5, gpu_freq_mhz=1300.0)])
    assert throttle_monitored([_s(0.0, gpu_max_freq_mhz=1300.0)])
    assert throttle_monitored([_s(0.0, oc_events=0)])
    assert throttle_monitored([_s(0.0, cooling={"pwm-fan": 0})])
    assert throttle_monitored([_s(0.0, throttle_reasons=("hw_slowdown",))])
