"""The sysfs power source on fake AGX Orin / Orin NX / Orin Nano trees, values changing mid-run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

from orinbench.bench.harness import StopRule, Warmup, measure  # noqa: E402
from orinbench.errors import PowerSourceError  # noqa: E402
from orinbench.telemetry.power import (  # noqa: E402
    PowerTrace,
    measure_idle,
    power_warnings,
    summarize_power,
)
from orinbench.telemetry.select import open_power_source  # noqa: E402
from orinbench.telemetry.sources.sysfs import (  # noqa: E402
    SysfsPowerSource,
    find_ina3221_rails,
    find_ina3221_timing,
)

# rail names per NVIDIA's Jetson Orin power documentation (INA3221 channel labels)
EXPECTED_RAILS = {
    "agx-orin-64gb": {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"},
    "orin-nx-16gb": {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"},
    "orin-nano-8gb": {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_RAILS))
def test_rails_found_without_nc_sum_channel_or_duplicates(tmp_path, kind):
    FakeBoard(tmp_path, kind)
    rails = find_ina3221_rails(tmp_path)
    # each monitor is visible twice (i2c device and /sys/class/hwmon link): listed once
    assert set(rails) == EXPECTED_RAILS[kind]


def test_nx_total_is_vdd_in_and_follows_changes_during_the_run(tmp_path):
    # a monitor set to refresh every 1 ms (1 sample): every 20 ms poll sees a new conversion
    board = FakeBoard(tmp_path, "orin-nx-16gb", ina_update_ms=1, ina_samples=1)
    board.set_rail("VDD_IN", mv=5000, ma=1000)  # 5 W
    board.set_rail("VDD_SOC", mv=5000, ma=300)  # 1.5 W, part of VDD_IN: not added
    src = SysfsPowerSource(period_s=0.02, root=tmp_path)
    src.start()
    t_start = time.monotonic()
    time.sleep(0.3)
    board.set_rail("VDD_IN", ma=3000)  # 15 W from here on
    t_change = time.monotonic()
    time.sleep(0.3)
    trace = src.stop()
    t_stop = time.monotonic()

    totals = [s.total_w for s in trace.samples]
    assert totals[0] == pytest.approx(5.0)
    assert totals[-1] == pytest.approx(15.0)
    assert set(round(t, 6) for t in totals) == {5.0, 15.0}
    assert all(s.rails["VDD_SOC"] == pytest.approx(1.5) for s in trace.samples)
    assert "VDD_IN" in trace.total_of
    ts = [s.t_s for s in trace.samples]
    assert ts == sorted(ts) and ts[0] < 0.02
    assert trace.period_s_achieved is not None and trace.period_s_achieved < 0.1
    assert trace.duration_s <= t_stop - t_start + 0.05

    window = trace.duration_s
    s = summarize_power(trace, inferences=60, window_s=window)
    first = t_change - t_start
    expected = 5.0 * first + 15.0 * (window - first)
    # the change is seen within one period (10 W step x 2 periods of slack)
    assert s["energy"]["j"] == pytest.approx(expected, abs=0.4)
    assert s["peak_w"] == pytest.approx(15.0)
    assert s["rails"]["VDD_SOC"]["mean_w"] == pytest.approx(1.5)


def test_agx_total_is_the_sum_of_the_rails(tmp_path):
    board = FakeBoard(tmp_path, "agx-orin-64gb")
    board.set_rail("VDD_GPU_SOC", mv=5000, ma=2000)  # 10 W
    board.set_rail("VDD_CPU_CV", mv=5000, ma=400)  # 2 W
    board.set_rail("VIN_SYS_5V0", mv=5000, ma=700)  # 3.5 W
    board.set_rail("VDDQ_VDD2_1V8AO", mv=1800, ma=500)  # 0.9 W
    src = SysfsPowerSource(period_s=0.02, root=tmp_path)
    src.start()
    time.sleep(0.1)
    trace = src.stop()
    assert all(s.total_w == pytest.approx(16.4) for s in trace.samples)
    assert trace.total_of.startswith("sum of rails")


def test_a_rail_vanishing_mid_run_is_an_error_not_a_short_trace(tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    src = SysfsPowerSource(period_s=0.01, root=tmp_path)
    src.start()
    time.sleep(0.05)
    board.remove_rail_files("VDD_SOC")
    time.sleep(0.05)
    with pytest.raises(PowerSourceError) as exc:
        src.stop()
    assert "stopped" in str(exc.value) and exc.value.exit_code == 2
    # the source is usable again once the sensor is back
    board.set_rail("VDD_SOC", ma=100)
    src.start()
    assert src.stop().samples


def test_tree_without_rails_is_unavailable(tmp_path):
    (tmp_path / "sys" / "class" / "hwmon").mkdir(parents=True)
    with pytest.raises(PowerSourceError) as exc:
        SysfsPowerSource(root=tmp_path)
    assert "no INA3221 rails" in str(exc.value)
    with pytest.raises(PowerSourceError) as exc:
        open_power_source("sysfs", root=str(tmp_path))
    assert exc.value.exit_code == 2


def test_auto_on_a_jetson_falls_back_to_sysfs_and_says_why(tmp_path):
    FakeBoard(tmp_path, "orin-nx-16gb")
    src, note = open_power_source(
        "auto", root=str(tmp_path), jtop_socket=str(tmp_path / "no-jtop.sock")
    )
    assert src is not None and src.name == "sysfs"
    assert note.startswith("sysfs (auto)")
    assert "jtop" in note and "passed over" in note


def test_auto_off_jetson_says_it_is_not_a_jetson(tmp_path):
    src, note = open_power_source("auto", root=str(tmp_path))
    assert "not a Jetson" in note
    if src is not None:  # a machine with a working NVML
        assert src.name == "nvml"
        src.close()
    else:
        assert note.startswith("none")


def test_none_and_unknown_names(tmp_path):
    src, note = open_power_source("none", root=str(tmp_path))
    assert src is None and "not measured" in note
    with pytest.raises(Exception) as exc:
        open_power_source("watts", root=str(tmp_path))
    assert getattr(exc.value, "exit_code", None) == 2


def test_idle_then_run_with_one_source(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.set_rail("VDD_IN", mv=5000, ma=600)  # 3 W idle
    src = SysfsPowerSource(period_s=0.02, root=tmp_path)
    idle = measure_idle(src, 0.1)
    board.set_rail("VDD_IN", ma=2000)  # 10 W under load
    src.start()
    time.sleep(0.1)
    run = src.stop()
    s = summarize_power(run, inferences=10, window_s=run.duration_s, idle=idle)
    assert s["idle_mean_w"] == pytest.approx(3.0)
    assert s["above_idle_mean_w"] == pytest.approx(7.0)


class _SleepRunner:
    """A runner whose 'inference' sleeps 2 ms (real time: the power thread runs beside it)."""

    def stage_inputs(self) -> None:
        pass

    def enqueue(self) -> None:
        time.sleep(0.002)

    def fetch_outputs(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def device_timer(self) -> None:
        return None


def test_harness_starts_and_stops_the_source_around_the_window(tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    board.set_rail("VDD_IN", mv=5000, ma=1600)  # 8 W
    src = SysfsPowerSource(period_s=0.01, root=tmp_path)
    m = measure(
        _SleepRunner(),
        warmup=Warmup(seconds=0.0, iterations=1),
        stop=StopRule(duration_s=0.2),
        power=src,
    )
    assert isinstance(m.power_trace, PowerTrace)
    s = summarize_power(m.power_trace, inferences=m.iterations, window_s=m.wall_s)
    assert s["mean_w"] == pytest.approx(8.0)
    assert s["energy"]["mj_per_inference"] == pytest.approx(8.0 * m.wall_s * 1000 / m.iterations)


# -- the INA3221 conversion window (audit defect 6) ----------------------------------------------
# nvpower.sh sets samples 512 / update_interval 430 on Orin: FakeBoard writes those files by
# default. Verified on fake sysfs trees only, never on a real Orin.


def test_a_430_ms_sensor_polled_every_50_ms_keeps_one_reading_per_refresh(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")  # update_interval 430, samples 512
    board.set_rail("VDD_IN", mv=5000, ma=1000)  # 5 W
    src = SysfsPowerSource(period_s=0.05, root=tmp_path)
    assert (src.sensor_update_s, src.sensor_samples) == (0.43, 512)
    assert "refreshes every 0.43 s" in src.describe()
    src.start()
    time.sleep(0.6)
    board.set_rail("VDD_IN", ma=2000)  # 10 W: a new conversion
    time.sleep(0.6)
    trace = src.stop()
    assert (trace.sensor_update_s, trace.sensor_samples, trace.resolution_s) == (0.43, 512, 0.43)
    # ~24 polls, but only new values or readings a refresh apart are kept
    assert trace.repeats_dropped >= 12
    assert len(trace.samples) <= 6
    ts = [s.t_s for s in trace.samples]
    for a, b, sa, sb in zip(ts, ts[1:], trace.samples, trace.samples[1:], strict=False):
        if sa.total_w == sb.total_w:
            assert b - a >= 0.43  # an equal reading is kept only once a refresh has passed
    assert trace.samples[0].total_w == 5.0 and trace.samples[-1].total_w == 10.0
    assert any("update_interval" in n and "dropped" in n for n in trace.notes)
    # the achieved period is that of the distinct readings, near the sensor's
    assert trace.period_s_achieved is not None and trace.period_s_achieved > 0.3
    s = summarize_power(trace, inferences=10, window_s=trace.duration_s)
    assert s["resolution_s"] == 0.43 and s["sensor_samples"] == 512
    assert s["samples"] == len([t for t in ts if 0 <= t <= trace.duration_s])
    msgs = [w.message for w in power_warnings(s)]
    # a 1.2 s window holds fewer than 5 refreshes ...
    assert any("shorter than 5 refreshes" in m for m in msgs)
    # ... but a 0.43 s period is the sensor, not a slow source
    assert not any("sampled every" in m for m in msgs)


def test_without_update_interval_nothing_is_dropped_and_resolution_is_unknown(tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb", ina_update_ms=None, ina_samples=None)
    board.set_rail("VDD_IN", mv=5000, ma=1000)
    src = SysfsPowerSource(period_s=0.02, root=tmp_path)
    src.start()
    time.sleep(0.15)
    trace = src.stop()
    assert trace.sensor_update_s is None and trace.resolution_s is None
    assert trace.repeats_dropped == 0 and len(trace.samples) >= 5
    assert any("unreadable" in n for n in trace.notes)


def test_timing_of_several_monitors_is_the_slowest(tmp_path):
    board = FakeBoard(tmp_path, "agx-orin-64gb")  # two monitors, 1-0040 and 1-0041
    assert find_ina3221_timing(tmp_path) == (0.43, 512)
    second = board.path("/sys/bus/i2c/devices/1-0041/hwmon/hwmon2")
    board.write(second / "update_interval", "860\n")
    board.write(second / "samples", "1024\n")
    assert find_ina3221_timing(tmp_path) == (0.86, 1024)
    (second / "samples").unlink()  # one monitor without the file: the count is unknown
    assert find_ina3221_timing(tmp_path) == (0.86, None)
    board.write(second / "update_interval", "0\n")  # nonsense is not a resolution
    assert find_ina3221_timing(tmp_path)[0] is None
    assert find_ina3221_timing(tmp_path / "nothing") == (None, None)
