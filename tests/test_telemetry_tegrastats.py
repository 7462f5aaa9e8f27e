"""tegrastats: real output lines of several modules parsed; the source run against a stand-in."""

from __future__ import annotations

import itertools
import shutil
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

from orinbench.errors import PowerSourceError  # noqa: E402
from orinbench.telemetry.select import open_power_source  # noqa: E402
from orinbench.telemetry.sources.tegrastats import (  # noqa: E402
    TegrastatsPowerSource,
    parse_tegrastats,
)

LINES = FIXTURES / "tegrastats"


def lines(name):
    return (LINES / name).read_text().splitlines()


def test_agx_orin_jp5_line():
    idle, busy = map(parse_tegrastats, lines("agx_orin_jp5.txt"))
    # NC channels and RAM/SWAP figures are not rails
    assert idle.rails_mw == {
        "VDD_GPU_SOC": 2779,
        "VDD_CPU_CV": 463,
        "VIN_SYS_5V0": 3327,
        "VDDQ_VDD2_1V8AO": 404,
    }
    assert idle.temperatures_c["CPU"] == 42.375 and "CV0" not in idle.temperatures_c
    assert (idle.gpu_load_pct, idle.gpu_freq_mhz) == (0, 305)
    assert (idle.emc_load_pct, idle.emc_freq_mhz) == (0, 2133)
    assert busy.rails_mw["VDD_GPU_SOC"] == 21483  # the current value, not the running average
    assert (busy.gpu_load_pct, busy.gpu_freq_mhz, busy.emc_freq_mhz) == (97, 1300, 3199)


def test_orin_nx_and_nano_jp6_lines():
    nx = parse_tegrastats(lines("orin_nx_jp6.txt")[1])
    assert nx.rails_mw == {"VDD_IN": 17862, "VDD_CPU_GPU_CV": 8941, "VDD_SOC": 3712}
    assert nx.temperatures_c["tj"] == 51.031
    assert (nx.gpu_load_pct, nx.gpu_freq_mhz) == (99, 918)
    nano = parse_tegrastats(lines("orin_nano_jp6.txt")[0])
    assert nano.rails_mw == {"VDD_IN": 4387, "VDD_CPU_GPU_CV": 474, "VDD_SOC": 1306}
    assert nano.gpu_freq_mhz == 306


def test_jetpack4_line_without_units():
    nano = parse_tegrastats(lines("nano_jp4.txt")[0])
    assert nano.rails_mw == {"POM_5V_IN": 2455, "POM_5V_GPU": 0, "POM_5V_CPU": 397}
    assert (nano.gpu_load_pct, nano.gpu_freq_mhz) == (0, 921)


def test_a_line_without_power_fields():
    r = parse_tegrastats("RAM 100/200MB (lfb 1x4MB) CPU [1%@102] EMC_FREQ 0%")
    assert r.rails_mw == {} and r.emc_freq_mhz is None


@pytest.fixture
def fake_tegrastats(tmp_path, monkeypatch):
    """An executable 'tegrastats' printing the lines of a chosen file."""

    def make(lines_file: Path, *, where: Path | None = None, exit_after: int = 0) -> Path:
        exe = (where or tmp_path / "bin") / "tegrastats"
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{FIXTURES / "fake_tegrastats.py"}" "$@"\n'
        )
        exe.chmod(0o755)
        monkeypatch.setenv("FAKE_TEGRASTATS_FILE", str(lines_file))
        monkeypatch.setenv("FAKE_TEGRASTATS_EXIT_AFTER", str(exit_after))
        return exe

    return make


def test_source_samples_the_lines_and_uses_vdd_in_as_total(fake_tegrastats):
    exe = fake_tegrastats(LINES / "orin_nx_jp6.txt")
    src = TegrastatsPowerSource(period_s=0.02, binary=exe)
    src.start()
    time.sleep(0.3)
    trace = src.stop()
    totals = [s.total_w for s in trace.samples]
    assert len(totals) >= 5
    # the first line (5.012 W) is read before the window; then 17.862 W repeats
    assert set(totals) <= {5.012, 17.862} and totals[-1] == 17.862
    assert trace.samples[-1].rails["VDD_SOC"] == pytest.approx(3.712)
    assert "VDD_IN" in trace.total_of
    assert "--interval 20" in trace.notes[0]
    assert trace.period_s_achieved is not None and trace.period_s_achieved < 0.2
    assert src._proc is None  # the child is gone


def test_tegrastats_dying_mid_run_is_an_error(fake_tegrastats):
    exe = fake_tegrastats(LINES / "agx_orin_jp5.txt", exit_after=3)
    src = TegrastatsPowerSource(period_s=0.02, binary=exe)
    src.start()
    time.sleep(0.3)
    with pytest.raises(PowerSourceError) as exc:
        src.stop()
    assert "tegrastats stopped" in str(exc.value)


def test_tegrastats_without_power_fields_fails_before_the_window(fake_tegrastats, tmp_path):
    f = tmp_path / "nopower.txt"
    f.write_text("RAM 100/200MB (lfb 1x4MB) CPU [1%@102] EMC_FREQ 0%@204\n")
    src = TegrastatsPowerSource(period_s=0.02, binary=fake_tegrastats(f))
    with pytest.raises(PowerSourceError) as exc:
        src.start()
    assert "no power fields" in str(exc.value)


def test_missing_tegrastats_is_unavailable(tmp_path):
    with pytest.raises(PowerSourceError) as exc:
        TegrastatsPowerSource(binary=tmp_path / "nope")
    assert "tegrastats not found" in str(exc.value)
    with pytest.raises(PowerSourceError) as exc:
        open_power_source("tegrastats", root=str(tmp_path))
    assert exc.value.exit_code == 2


def test_auto_falls_back_to_tegrastats_when_sysfs_has_no_rails(tmp_path, fake_tegrastats):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    shutil.rmtree(board.path("/sys/bus/i2c"))
    fake_tegrastats(LINES / "orin_nano_jp6.txt", where=board.path("/usr/bin"))
    src, note = open_power_source(
        "auto", root=str(tmp_path), period_s=0.02, jtop_socket=str(tmp_path / "none.sock")
    )
    assert src is not None and src.name == "tegrastats"
    assert "sysfs: " in note and "jtop: " in note
    src.start()
    time.sleep(0.1)
    assert src.stop().samples


def test_tegrastats_faster_than_the_ina3221_keeps_one_line_per_refresh(fake_tegrastats, tmp_path):
    # tegrastats reads the same INA3221 as sysfs: with --interval 50 its lines repeat a value
    # until the chip refreshes (430 ms on the fake board, as nvpower.sh sets it); verified on a
    # fake tree and a stand-in tegrastats only
    board = FakeBoard(tmp_path / "board", "orin-nx-16gb")
    exe = fake_tegrastats(LINES / "orin_nx_jp6.txt")
    src = TegrastatsPowerSource(period_s=0.05, binary=exe, root=board.root)
    assert (src.sensor_update_s, src.sensor_samples) == (0.43, 512)
    src.start()
    time.sleep(1.0)
    trace = src.stop()
    assert (trace.sensor_update_s, trace.resolution_s) == (0.43, 0.43)
    assert trace.repeats_dropped >= 10  # ~20 lines, a new value at most every 0.43 s
    ts = [s.t_s for s in trace.samples]
    assert all(b - a >= 0.43 for a, b in itertools.pairwise(ts[1:]))  # 17.862 repeats
    assert trace.samples[-1].total_w == 17.862
    assert any("dropped" in n for n in trace.notes)
    assert trace.period_s_achieved is not None and trace.period_s_achieved >= 0.43
