"""Stable conditions: clock changes and throttling during a run, and the system check."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

from orinbench.errors import NotReadyError  # noqa: E402
from orinbench.telemetry.conditions import (  # noqa: E402
    ConditionsMonitor,
    ConditionsSample,
    ConditionsTrace,
    conditions_warnings,
    require_tuned,
    system_check,
)


def run_monitor(root, during=None, *, seconds=0.12):
    mon = ConditionsMonitor(root=root, period_s=0.02)
    mon.start()
    time.sleep(seconds / 2)
    if during is not None:
        during()
    time.sleep(seconds / 2)
    return mon.stop()


def codes(warnings):
    return [w.code for w in warnings]


def test_locked_cool_device_gives_no_warning(tmp_path):
    FakeBoard(tmp_path, "agx-orin-64gb")  # its fan cooling device is active: not throttling
    trace = run_monitor(tmp_path)
    assert trace.source == "sysfs" and len(trace.samples) >= 3
    assert {s.gpu_freq_mhz for s in trace.samples} == {1300.5}
    assert trace.trip_points_c["tj"] == 95.5
    assert conditions_warnings(trace) == []
    json.dumps(trace.to_dict(), allow_nan=False)


def test_gpu_clock_change_during_the_run_is_flagged(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.unlock_clocks()
    board.set_gpu(cur=918000000)
    trace = run_monitor(tmp_path, lambda: board.set_gpu(cur=510000000))
    w = conditions_warnings(trace)
    assert codes(w) == ["clock-change"]
    assert "510" in w[0].message and "918" in w[0].message
    assert "jetson_clocks" in w[0].message


def test_small_clock_jitter_within_tolerance_is_not_a_change():
    samples = tuple(
        ConditionsSample(t_s=i * 0.1, gpu_freq_mhz=f)
        for i, f in enumerate([1000.0, 1000.0, 995.0, 1000.0])
    )
    assert conditions_warnings(ConditionsTrace("sysfs", samples, 0.1)) == []


def test_over_current_events_are_throttling(tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    trace = run_monitor(tmp_path, lambda: board.bump_oc_events(2))
    w = conditions_warnings(trace)
    assert codes(w) == ["throttling"]
    assert "2 over-current" in w[0].message


def test_temperature_at_the_trip_point_is_throttling(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    trace = run_monitor(tmp_path, lambda: board.set_temp("tj-thermal", 96.0))
    w = conditions_warnings(trace)
    assert codes(w) == ["throttling"]
    assert "tj reached 96" in w[0].message


def test_lowered_gpu_cap_and_active_cooling_device_are_throttling(tmp_path):
    board = FakeBoard(tmp_path, "agx-orin-64gb")

    def throttle():
        board.set_gpu(hi=612000000, cur=612000000)
        board.set_cooling_state(1, 2)

    w = conditions_warnings(run_monitor(tmp_path, throttle))
    assert codes(w) == ["clock-change", "throttling"]
    assert "cap lowered from 1300.5 to 612" in w[1].message
    assert "gpu-balanced" in w[1].message


def test_nvml_throttle_reasons_are_throttling():
    samples = (
        ConditionsSample(0.0, gpu_freq_mhz=1980.0),
        ConditionsSample(0.5, gpu_freq_mhz=1980.0, throttle_reasons=("sw-power-cap",)),
    )
    w = conditions_warnings(ConditionsTrace("nvml", samples, 0.5))
    assert codes(w) == ["throttling"] and "sw-power-cap" in w[0].message


def test_off_jetson_without_nvml_reads_nothing(tmp_path):
    mon = ConditionsMonitor(root=tmp_path, period_s=0.02)
    assert not mon.available
    mon.start()
    trace = mon.stop()
    assert trace.samples == () and conditions_warnings(trace) == []


def test_system_check_ready_on_a_tuned_board(tmp_path):
    FakeBoard(tmp_path, "agx-orin-64gb")
    check = system_check(tmp_path, expect_power_mode="MAXN")
    assert check.ready and check.reasons == ()
    assert check.power_mode == "MAXN" and check.jetson_clocks is True
    assert system_check(tmp_path, expect_power_mode="0").ready  # by id too
    assert require_tuned(tmp_path).ready


def test_system_check_not_ready_with_unlocked_clocks_and_wrong_mode(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.unlock_clocks()
    board.set_power_mode(1)
    check = system_check(tmp_path, expect_power_mode="maxn")
    assert not check.ready
    text = " | ".join(check.reasons)
    assert "clocks not locked" in text and "GPU min 306 MHz < max 918 MHz" in text
    assert "power mode is 10W (id 1), expected maxn" in text
    assert "sudo jetson_clocks" in check.fixes and "sudo nvpmodel -m 0" in check.fixes
    with pytest.raises(NotReadyError) as exc:
        require_tuned(tmp_path, expect_power_mode="MAXN")
    assert exc.value.exit_code == 4


def test_system_check_unknown_mode_hot_device_and_off_jetson(tmp_path):
    board = FakeBoard(tmp_path / "hot", "orin-nano-8gb")
    board.set_temp("cpu-thermal", 97.0)
    (board.root / "var" / "lib" / "nvpmodel" / "status").unlink()
    check = system_check(board.root)
    assert not check.ready
    assert any("power mode unknown" in r for r in check.reasons)
    assert any(r.startswith("throttling now: cpu 97") for r in check.reasons)

    off = system_check(tmp_path / "empty")
    assert not off.ready and "not a Jetson" in off.reasons[0]
    json.dumps(off.to_dict(), allow_nan=False)


class _SleepRunner:
    """A runner whose 'inference' sleeps 2 ms; ``on_enqueue`` can change the board mid-run."""

    def __init__(self, on_enqueue=None) -> None:
        self.n = 0
        self.on_enqueue = on_enqueue

    def stage_inputs(self) -> None:
        pass

    def enqueue(self) -> None:
        self.n += 1
        if self.on_enqueue is not None:
            self.on_enqueue(self.n)
        time.sleep(0.002)

    def fetch_outputs(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def device_timer(self) -> None:
        return None


def test_power_and_conditions_around_the_harness_window(tmp_path):
    from orinbench.bench.harness import StopRule, Warmup, measure
    from orinbench.telemetry import TelemetryWindow
    from orinbench.telemetry.sources.sysfs import SysfsPowerSource

    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.set_rail("VDD_IN", mv=5000, ma=2000)

    def drop_clock(n):
        if n == 40:
            board.set_gpu(cur=510000000)

    win = TelemetryWindow(
        SysfsPowerSource(period_s=0.01, root=tmp_path),
        ConditionsMonitor(root=tmp_path, period_s=0.01),
    )
    m = measure(
        _SleepRunner(drop_clock),
        warmup=Warmup(seconds=0.0, iterations=1),
        stop=StopRule(iterations=100),
        power=win,
    )
    assert m.power_trace is not None and m.power_trace.samples[0].total_w == 10.0
    assert win.conditions_trace is not None
    assert codes(conditions_warnings(win.conditions_trace)) == ["clock-change"]
