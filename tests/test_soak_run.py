"""The soak run: a fake runner on a fake clock, and a real soak on the simulated Jetson board."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402
from trt_double import pytest_fixtures as fx  # noqa: E402

from orinbench.bench.harness import Warmup  # noqa: E402
from orinbench.errors import UsageError  # noqa: E402
from orinbench.results.schema import TensorSpec  # noqa: E402
from orinbench.soak import soak_model, soak_runner, window_count  # noqa: E402
from orinbench.telemetry.conditions import (  # noqa: E402
    ConditionsMonitor,
    ConditionsSample,
    ConditionsTrace,
)
from orinbench.telemetry.power import PowerSample, PowerTrace  # noqa: E402
from orinbench.telemetry.sources.sysfs import SysfsPowerSource  # noqa: E402

trt_env = fx.trt_env


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class CostRunner:
    """Each iteration takes ``cost_ms(t)`` on the fake clock, t = fake seconds elapsed."""

    backend = "fake"
    backend_version = "0"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __init__(self, clock: FakeClock, cost_ms: Any) -> None:
        self.clock = clock
        self.cost_ms = cost_ms
        self.loaded: Mapping[str, Any] | None = None

    def load_inputs(self, feed: Mapping[str, Any]) -> None:
        self.loaded = feed

    def stage_inputs(self) -> None: ...

    def enqueue(self) -> None:
        assert self.loaded is not None, "load_inputs must come first"
        self.clock.ns += int(self.cost_ms(self.clock.ns / 1e9) * 1e6)

    def fetch_outputs(self) -> None: ...

    def synchronize(self) -> None: ...

    def device_timer(self) -> None:
        return None


class ScriptedPower:
    """A power source on the fake clock: ``watts(t)`` read every 0.25 fake seconds."""

    name = "scripted"

    def __init__(self, clock: FakeClock, watts: Any) -> None:
        self.clock, self.watts = clock, watts
        self.t0 = 0.0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.t0 = self.clock.ns / 1e9

    def stop(self) -> PowerTrace:
        end = self.clock.ns / 1e9 - self.t0
        ts = [0.25 * k for k in range(int(end / 0.25) + 2)]
        samples = tuple(PowerSample(t, self.watts(self.t0 + t)) for t in ts)
        return PowerTrace("scripted", samples, 0.25, 0.25, end)


class ScriptedConditions:
    """Conditions on the fake clock, every 0.25 fake seconds: ``clock_mhz(t)``, ``temp(t)``."""

    def __init__(self, clock: FakeClock, clock_mhz: Any, temp: Any) -> None:
        self.clock, self.clock_mhz, self.temp = clock, clock_mhz, temp
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = self.clock.ns / 1e9

    def stop(self) -> ConditionsTrace:
        end = self.clock.ns / 1e9 - self.t0
        samples = tuple(
            ConditionsSample(
                t_s=t,
                gpu_freq_mhz=self.clock_mhz(self.t0 + t),
                gpu_max_freq_mhz=918.0,
                temperatures_c={"tj": self.temp(self.t0 + t), "cpu": self.temp(self.t0 + t) - 2},
            )
            for t in (0.25 * k for k in range(int(end / 0.25) + 1))
        )
        return ConditionsTrace("scripted", samples, 0.25, end, {"tj": 95.5})


def test_windows_drift_events_and_steady_state_on_a_fake_clock() -> None:
    clock = FakeClock()
    # 1 ms per iteration for the first 3 s, then 1.5 ms (as after a clock drop)
    runner = CostRunner(clock, lambda t: 1.0 if t < 3.0 else 1.5)
    power = ScriptedPower(clock, lambda t: 10.0 + t)  # a linear ramp: window means are exact
    cond = ScriptedConditions(
        clock, lambda t: 918.0 if t < 3.0 else 612.0, lambda t: 50.0 + 20.0 * min(t / 3.0, 1.0)
    )
    run = soak_runner(
        runner,
        feed={"x": np.zeros(1)},
        seconds=6.0,
        window_s=1.0,
        warmup=Warmup(seconds=0.0, iterations=0),
        power=power,  # type: ignore[arg-type]
        conditions=cond,
        clock=clock,
        monotonic=lambda: clock.ns / 1e9,  # type: ignore[arg-type]
    )
    s = run.summary
    assert power.starts == 1  # sampled continuously, not per window
    assert s["window_count"] == 6 and len(run.windows) == 6
    # back to back: each window starts where the last ended (plus one untimed iteration)
    assert [w.t_s for w in run.windows] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], abs=0.02)
    assert [w.p99_ms for w in run.windows[:3]] == [1.0, 1.0, 1.0]
    assert run.windows[-1].p99_ms == pytest.approx(1.5)
    assert s["p99_drift_pct"] == pytest.approx(50.0)
    # mean of 10 + t over each window: 10.5 + k (the warm-up iteration shifts t by 1 ms)
    assert [w.power_w for w in run.windows] == pytest.approx(
        [10.5, 11.5, 12.5, 13.5, 14.5, 15.5], abs=0.02
    )
    assert s["power_drift_pct"] == pytest.approx(100.0 * 5.0 / 10.5, abs=0.3)
    assert [w.gpu_clock_mhz for w in run.windows] == [918.0] * 3 + [612.0] * 3
    # the readings inside each window: window 0 holds those at 0.25 ... 1.0 s (the one at 0 s
    # precedes its first timed iteration), so its mean is the heat-up's value at 0.625 s
    assert run.windows[0].temps_c["tj"] == pytest.approx(50.0 + 20.0 * 0.625 / 3.0, abs=0.03)
    assert run.windows[0].temps_c["cpu"] == pytest.approx(48.0 + 20.0 * 0.625 / 3.0, abs=0.03)
    assert run.windows[2].temp_c == pytest.approx(50.0 + 20.0 * 2.625 / 3.0, abs=0.03)
    assert [w.temp_c for w in run.windows[3:]] == [70.0, 70.0, 70.0]
    assert s["throttle_events"] == 1
    assert s["events"][0]["kind"] == "gpu-clock-drop"
    assert s["events"][0]["t_s"] == pytest.approx(3.0, abs=0.02)
    assert s["steady_state_s"] == pytest.approx(3.0, abs=0.02)
    # all windows merged into one measurement: every sample is kept
    assert run.measurement.iterations == sum(w.iterations for w in run.windows)
    assert run.span_s == pytest.approx(6.0, abs=0.02)
    assert run.power_trace is not None and run.power_trace.duration_s == run.span_s
    json.dumps(s, allow_nan=False)


def test_a_soak_shorter_than_one_window_is_refused() -> None:
    with pytest.raises(UsageError, match="shorter than one window"):
        window_count(5.0, 10.0)
    with pytest.raises(UsageError):
        window_count(5.0, 0.0)
    with pytest.raises(UsageError):
        window_count(-1.0, 1.0)
    assert window_count(0.3, 0.1) == 3
    assert window_count(25.0, 10.0) == 2


class BoardRunner:
    """Sleeps per iteration and plays a script on the simulated board while the soak runs:
    the tj/gpu zones heat from 45 to 75 °C over 0.6 s, then hold; at 0.5 s the GPU clock drops
    to 510 MHz, iterations get three times as slow and the input rail draws more current."""

    backend = "fake"
    backend_version = "0"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __init__(self, board: FakeBoard) -> None:
        self.board = board
        self.t0: float | None = None
        self.last_write = -1.0
        self.dropped = False

    def load_inputs(self, feed: Mapping[str, Any]) -> None: ...

    def stage_inputs(self) -> None: ...

    def enqueue(self) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        t = now - self.t0
        if t - self.last_write >= 0.01:
            temp = 45.0 + 30.0 * min(t / 0.6, 1.0)
            self.board.set_temp("tj-thermal", temp)
            self.board.set_temp("gpu-thermal", temp - 1.0)
            self.last_write = t
        if t >= 0.5 and not self.dropped:
            self.board.set_gpu(cur=510000000)
            self.board.set_rail("VDD_IN", mv=5000, ma=1200)
            self.dropped = True
        time.sleep(0.003 if self.dropped else 0.001)

    def fetch_outputs(self) -> None: ...

    def synchronize(self) -> None: ...

    def device_timer(self) -> None:
        return None


def test_soak_on_the_simulated_board_sees_the_clock_drop_and_the_heat(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.set_rail("VDD_IN", mv=5000, ma=1000)
    power = SysfsPowerSource(period_s=0.02, root=tmp_path)
    cond = ConditionsMonitor(root=tmp_path, period_s=0.02)
    assert cond.backend == "sysfs"
    run = soak_runner(
        BoardRunner(board),
        feed={},
        seconds=1.2,
        window_s=0.2,
        warmup=Warmup(seconds=0.0, iterations=0),
        power=power,
        conditions=cond,
    )
    w = run.windows
    assert len(w) == 6
    assert w[0].gpu_clock_mhz == 918.0 and w[-1].gpu_clock_mhz == 510.0
    assert w[0].power_w == pytest.approx(5.0, abs=0.01)  # VDD_IN = 5 V x 1 A
    assert w[-1].power_w == pytest.approx(6.0, abs=0.01)
    s = run.summary
    assert s["power_drift_pct"] == pytest.approx(20.0, abs=0.5)
    # 1 ms -> 3 ms sleeps: the median moves by about 2 ms (P99 of 0.2 s windows is too noisy
    # on a shared machine to assert on; the fake-clock test checks P99 drift exactly)
    assert s["p50_drift_pct"] > 100.0 and w[-1].p50_ms - w[0].p50_ms > 1.5
    assert isinstance(s["p99_drift_pct"], float)
    drops = [e for e in s["events"] if e["kind"] == "gpu-clock-drop"]
    assert len(drops) == 1 and 0.3 <= drops[0]["t_s"] <= 0.8
    assert s["throttle_events"] == 1
    assert w[0].temp_c is not None and w[0].temp_c < 60.0
    assert w[-1].temp_c == pytest.approx(75.0, abs=0.01)
    # the heat-up ends at 0.6 s: the steady state starts with the window that begins then
    assert s["steady_state_s"] is not None and 0.5 <= s["steady_state_s"] <= 0.85
    assert run.conditions_trace is not None and run.conditions_trace.trip_points_c["tj"] == 95.5
    # the merged power trace keeps the sensor's resolution (INA3221 430 ms on the fake board)
    assert run.power_trace is not None and run.power_trace.resolution_s == 0.43


def test_soak_model_runs_a_real_onnx_model_and_fills_the_result(
    tmp_path: Path, conv_model: Path
) -> None:
    board = FakeBoard(tmp_path / "board", "agx-orin-64gb")
    cond = ConditionsMonitor(root=tmp_path / "board", period_s=0.05)
    result = soak_model(
        conv_model, seconds=0.4, window_s=0.2, warmup=Warmup(seconds=0.05), conditions=cond
    )
    assert board.spec.gpu_devfreq  # the board existed for the monitor
    soak = result.extra["soak"]
    assert soak["window_count"] == 2 and len(soak["windows"]) == 2
    assert result.config.stop["kind"] == "soak" and result.config.stop["windows"] == 2
    assert result.throughput["iterations"] == sum(w["iterations"] for w in soak["windows"])
    assert len(result.samples["latency"]) == result.throughput["iterations"]
    assert soak["windows"][0]["gpu_clock_mhz"] == 1300.5
    assert result.power is None and soak["power_drift_pct"] is None
    assert "conditions" in result.extra
    assert "soak.p99_drift_pct" in result.metrics()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_soak_runs_a_tensorrt_engine_through_the_same_runner_protocol(
    trt_env: Any, tmp_path: Path
) -> None:
    from trt_double import models

    from orinbench.backends.tensorrt import BuildOptions, build_engine

    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = build_engine(onnx_path, tmp_path / "conv.engine", BuildOptions(precision="fp16"))
    result = soak_model(
        engine.engine_path,
        backend="tensorrt",
        seconds=0.4,
        window_s=0.2,
        warmup=Warmup(seconds=0.0),
    )
    assert result.environment.backend == "tensorrt"
    # the precision the engine was built with (its sidecar), not a default fp32
    assert result.config.precision == "fp16"
    assert result.extra["soak"]["window_count"] == 2
    # CUDA-event device time is kept per iteration, over all windows
    assert len(result.samples["gpu_compute"]) == len(result.samples["latency"])
    assert result.samples["gpu_compute"][0] > 0


class BlankConditions:
    """A conditions monitor that ran but read nothing (no clock, cap or thermal files)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = self.clock.ns / 1e9

    def stop(self) -> ConditionsTrace:
        end = self.clock.ns / 1e9 - self.t0
        samples = tuple(ConditionsSample(t_s=0.25 * k) for k in range(int(end / 0.25) + 1))
        return ConditionsTrace("blank", samples, 0.25, end, {})


def _soak_with(clock: FakeClock, conditions: Any) -> dict[str, Any]:
    return soak_runner(
        CostRunner(clock, lambda t: 1.0),
        feed={"x": np.zeros(1)},
        seconds=2.0,
        window_s=1.0,
        warmup=Warmup(seconds=0.0, iterations=0),
        conditions=conditions,
        clock=clock,
        monotonic=lambda: clock.ns / 1e9,
    ).summary


def test_throttling_without_clock_or_thermal_readings_is_not_counted_as_zero() -> None:
    clock = FakeClock()
    assert _soak_with(clock, None)["throttle_events"] is None
    clock = FakeClock()
    assert _soak_with(clock, BlankConditions(clock))["throttle_events"] is None
    # monitored and steady: a real zero
    clock = FakeClock()
    steady = ScriptedConditions(clock, lambda t: 918.0, lambda t: 50.0)
    s = _soak_with(clock, steady)
    assert s["throttle_events"] == 0 and s["events"] == []
