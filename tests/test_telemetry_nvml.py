"""NVML: a clear error without a GPU; the source's readings and energy counter (NVML double);
the real GPU where there is one (marked ``gpu``; see benchmarks/nvml_energy_check.py)."""

from __future__ import annotations

import time

import pytest
from _nvml_double import FakeNvml

from orinbench import _lazy
from orinbench.errors import PowerSourceError
from orinbench.telemetry.power import summarize_power
from orinbench.telemetry.select import open_power_source
from orinbench.telemetry.sources import nvml as nvml_source


def _nvml_works() -> bool:
    if not _lazy.is_available("pynvml"):
        return False
    nv = _lazy.pynvml()
    try:
        nv.nvmlInit()
    except Exception:
        return False
    try:
        return nv.nvmlDeviceGetCount() > 0
    finally:
        nv.nvmlShutdown()


HAS_GPU = _nvml_works()


@pytest.mark.skipif(HAS_GPU, reason="this machine has a working NVML GPU")
def test_nvml_without_a_gpu_is_a_clear_error():
    with pytest.raises(PowerSourceError) as exc:
        open_power_source("nvml")
    msg = str(exc.value)
    assert exc.value.exit_code == 2
    assert msg.startswith("NVML power source is unavailable")
    assert ("NVML:" in msg) if _lazy.is_available("pynvml") else ("not installed" in msg)
    assert "\n" not in msg


@pytest.fixture
def fake_nvml(monkeypatch):
    def install(**kw):
        fake = FakeNvml(**kw)
        monkeypatch.setattr(_lazy, "pynvml", lambda: fake)
        return fake

    return install


def test_instant_power_and_the_energy_counter_agree(fake_nvml):
    fake = fake_nvml(watts=150.0)
    src, note = open_power_source("nvml", period_s=0.01)
    assert src is not None and "Fake GPU" in note and "instant" in note
    src.start()
    time.sleep(0.3)
    trace = src.stop()
    assert fake.inits == 0  # NVML is shut down after the window
    assert all(s.total_w == 150.0 and s.rails == {"GPU": 150.0} for s in trace.samples)
    assert trace.energy_counter_j == pytest.approx(150.0 * trace.duration_s, rel=0.05)
    s = summarize_power(trace, inferences=10, window_s=trace.duration_s)
    assert s["energy"]["j"] == pytest.approx(s["energy"]["counter_j"], rel=0.05)
    assert "NVML_FI_DEV_POWER_INSTANT" in s["notes"][0]


def test_falls_back_to_the_averaged_reading_without_a_counter(fake_nvml):
    fake_nvml(watts=80.0, instant=False, counter=False)
    src = nvml_source.NvmlPowerSource(period_s=0.01)
    assert src.reading == "average" and not src.has_energy_counter
    src.start()
    time.sleep(0.05)
    trace = src.stop()
    assert trace.energy_counter_j is None
    assert trace.samples[0].total_w == 80.0
    with pytest.raises(PowerSourceError):
        nvml_source.NvmlPowerSource(reading="instant")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU with a working NVML")
def test_real_gpu_power_is_sampled():
    src, _ = open_power_source("nvml", period_s=0.02)
    assert src is not None
    src.start()
    time.sleep(0.5)
    trace = src.stop()
    assert len(trace.samples) >= 5
    assert all(s.total_w > 0 for s in trace.samples)
