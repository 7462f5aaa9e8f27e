"""Achieved throughput of a model or stage, and its fraction of the Orin module's published peak.

``achieved TFLOP/s = FLOPs per inference / median latency``, with FLOPs from
:func:`orinbench.model.inspect.inspect_model` (2 per multiply-accumulate; see
:mod:`orinbench.model.flops`) and the median of the per-inference latency samples. The fraction
of peak divides that by the peak of the module for the precision the stage ran in. It is a
compute roofline only (no memory-bandwidth ceiling), and the latency is wall time, so the fraction
is a lower bound of the tensor cores' utilisation, useful to rank stages, not to certify kernels.

Peaks
-----
Only figures NVIDIA prints are used; a figure not printed is ``None`` ("unknown"), never
estimated from core counts and clocks. Two kinds of entry are *derived* from printed figures,
and marked so (``Peak.basis``), because the data sheets print some figures only in another form:

* dense INT8 from sparse INT8, halved: the AGX Orin data sheet states that 2:4 structured
  sparsity "doubles throughput" of the Ampere Tensor Cores, and the Orin NX / Nano data sheets
  print both forms for the module (always exactly 2:1);
* the Orin NX GPU's share, as the module total minus its DLAs: the NX data sheet prints the
  module total and the per-DLA figures but no GPU-only figure (the AGX data sheet shows that the
  module total is GPU + DLA).

FP16 Tensor Core peaks are not printed in the data sheets and are unknown. Sources (NVIDIA):

* [AGX-DS] Jetson AGX Orin Series Modules Data Sheet, DS-10662-001 v1.8 — GPU "170 Sparse TOPS"
  (64GB) / "108 Sparse TOPS" (32GB) / "156 Sparse TOPS" (Industrial), DLA "up to 105" (64GB) /
  "up to 92" (32GB, Industrial) INT8 sparse TOPS
  (p.10 and p.8: 2x 46; p.12 prints 98 for the 32GB module, which does not add up to its
  printed module total of 200 = 108 + 92, so 92 is used).
* [AGX-TB] NVIDIA Jetson AGX Orin Series Technical Brief v1.2 — GPU "5.3 FP32 TFLOPs" (64GB).
* [NX-DS] Jetson Orin NX Series Data Sheet, DS-10712-001 v1.0 — module "100 (Sparse) / 50
  (Dense) INT8 TOPs" (16GB), "70 / 35" (8GB); DLA 2x 20 (16GB), 1x 20 (8GB) sparse INT8 TOPS.
* [NANO-DS] Jetson Orin Nano Series Data Sheet, DS-11105-001 v1.1 — module "40 (Sparse) / 20
  (Dense) INT8 TOPs" (8GB), "20 / 10" (4GB); no DLA ("DLA cores: 0"), so the GPU is the module.
* [NANO-SUPER] Jetson Orin Nano Developer Kit User Guide (JetPack 6.1 "Super" clocks) — "up to 67
  INT8 TOPS" (sparse) for the 8GB module in the MAXN SUPER power mode. Super figures of the other
  modules are not in these sources: unknown.

The peaks hold at the module's maximum clocks (MAXN / MAXN SUPER); a lower nvpmodel mode lowers
the real ceiling, so the fraction is then understated. The result records the power mode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: how a peak was obtained
PUBLISHED = "published"
DERIVED_DENSE = "derived: sparse / 2 (structured sparsity doubles Tensor Core throughput)"
DERIVED_GPU_SHARE = "derived: module total minus DLA (the data sheet prints no GPU-only figure)"


@dataclass(frozen=True)
class Peak:
    """One peak in TOPS or TFLOP/s (10^12 operations per second), where it comes from, and how."""

    value: float
    source: str
    basis: str = PUBLISHED


@dataclass(frozen=True)
class ModulePeaks:
    """Published peaks of one Jetson Orin module; ``None`` where NVIDIA publishes none."""

    module: str
    gpu_int8_sparse: Peak | None = None
    gpu_int8_dense: Peak | None = None
    gpu_fp16_dense: Peak | None = None
    gpu_fp32: Peak | None = None
    dla_int8_sparse: Peak | None = None
    dla_int8_dense: Peak | None = None
    dla_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"module": self.module, "dla_count": self.dla_count}
        for key in (
            "gpu_int8_sparse", "gpu_int8_dense", "gpu_fp16_dense", "gpu_fp32",
            "dla_int8_sparse", "dla_int8_dense",
        ):  # fmt: skip
            peak: Peak | None = getattr(self, key)
            out[key] = (
                None
                if peak is None
                else {
                    "value": peak.value,
                    "source": peak.source,
                    "basis": peak.basis,
                }
            )
        return out


_AGX_DS = "NVIDIA Jetson AGX Orin Series Modules Data Sheet DS-10662-001 v1.8"
_AGX_TB = "NVIDIA Jetson AGX Orin Series Technical Brief v1.2"
_NX_DS = "NVIDIA Jetson Orin NX Series Data Sheet DS-10712-001 v1.0"
_NANO_DS = "NVIDIA Jetson Orin Nano Series Data Sheet DS-11105-001 v1.1"
_NANO_SUPER = "NVIDIA Jetson Orin Nano Developer Kit User Guide (JetPack 6.1, MAXN SUPER)"

#: module key -> published peaks (see the module docstring for every figure's source)
ORIN_PEAKS: Mapping[str, ModulePeaks] = {
    "agx-orin-64gb": ModulePeaks(
        module="Jetson AGX Orin 64GB",
        gpu_int8_sparse=Peak(170.0, _AGX_DS),
        gpu_int8_dense=Peak(85.0, _AGX_DS, DERIVED_DENSE),
        gpu_fp32=Peak(5.3, _AGX_TB),
        dla_int8_sparse=Peak(105.0, _AGX_DS),
        dla_count=2,
    ),
    "agx-orin-32gb": ModulePeaks(
        module="Jetson AGX Orin 32GB",
        gpu_int8_sparse=Peak(108.0, _AGX_DS),
        gpu_int8_dense=Peak(54.0, _AGX_DS, DERIVED_DENSE),
        dla_int8_sparse=Peak(92.0, _AGX_DS),
        dla_count=2,
    ),
    "agx-orin-industrial": ModulePeaks(
        module="Jetson AGX Orin Industrial",
        gpu_int8_sparse=Peak(156.0, _AGX_DS),
        gpu_int8_dense=Peak(78.0, _AGX_DS, DERIVED_DENSE),
        dla_int8_sparse=Peak(92.0, _AGX_DS),
        dla_count=2,
    ),
    "orin-nx-16gb": ModulePeaks(
        module="Jetson Orin NX 16GB",
        gpu_int8_sparse=Peak(60.0, _NX_DS, DERIVED_GPU_SHARE),
        gpu_int8_dense=Peak(30.0, _NX_DS, f"{DERIVED_GPU_SHARE}; {DERIVED_DENSE}"),
        dla_int8_sparse=Peak(40.0, _NX_DS),
        dla_count=2,
    ),
    "orin-nx-8gb": ModulePeaks(
        module="Jetson Orin NX 8GB",
        gpu_int8_sparse=Peak(50.0, _NX_DS, DERIVED_GPU_SHARE),
        gpu_int8_dense=Peak(25.0, _NX_DS, f"{DERIVED_GPU_SHARE}; {DERIVED_DENSE}"),
        dla_int8_sparse=Peak(20.0, _NX_DS),
        dla_count=1,
    ),
    "orin-nano-8gb": ModulePeaks(
        module="Jetson Orin Nano 8GB",
        gpu_int8_sparse=Peak(40.0, _NANO_DS),
        gpu_int8_dense=Peak(20.0, _NANO_DS),
    ),
    "orin-nano-4gb": ModulePeaks(
        module="Jetson Orin Nano 4GB",
        gpu_int8_sparse=Peak(20.0, _NANO_DS),
        gpu_int8_dense=Peak(10.0, _NANO_DS),
    ),
    "orin-nano-8gb-super": ModulePeaks(
        module="Jetson Orin Nano 8GB (MAXN SUPER)",
        gpu_int8_sparse=Peak(67.0, _NANO_SUPER),
        gpu_int8_dense=Peak(33.5, _NANO_SUPER, DERIVED_DENSE),
    ),
}


def match_module(
    name: str | None, *, memory_gb: float | None = None, power_mode: str | None = None
) -> str | None:
    """The :data:`ORIN_PEAKS` key of a module named as the device reports it, or None.

    ``name`` is e.g. ``"NVIDIA Jetson AGX Orin Developer Kit"`` or ``"Jetson Orin NX 16GB"``.
    When the name does not give the memory size, ``memory_gb`` (total RAM) decides. A power mode
    naming SUPER selects the Super peaks, which are published for the Orin Nano 8GB only: for the
    other modules in a SUPER mode the peak is unknown (None) rather than the lower non-Super one.
    """
    if not name:
        return None
    text = name.lower().replace("-", " ")
    if "orin" not in text:
        return None
    if "agx" in text and "industrial" in text:
        return "agx-orin-industrial"
    if "agx" in text:
        family, sizes = "agx-orin", (64, 32)
    elif "nx" in text:
        family, sizes = "orin-nx", (16, 8)
    elif "nano" in text:
        family, sizes = "orin-nano", (8, 4)
    else:
        return None
    size: int | None = None
    m = re.search(r"(\d+)\s*gb", text)
    if m and int(m.group(1)) in sizes:
        size = int(m.group(1))
    elif memory_gb is not None and memory_gb > 0:
        # the OS sees a little less than the module's memory: pick the nearest size above it
        size = min(sizes, key=lambda s: (s < memory_gb * 0.85, abs(s - memory_gb)))
    if size is None:
        return None
    key = f"{family}-{size}gb"
    if power_mode and "super" in power_mode.lower():
        key = f"{key}-super"
    return key


def peak_for(
    module: str | None,
    precision: str,
    *,
    engine: str = "gpu",
    sparse: bool = False,
) -> Peak | None:
    """The peak for a stage that ran in ``precision`` on ``engine`` (``gpu`` or ``dla``).

    ``fp32`` -> the GPU's FP32 peak; ``fp16`` -> the FP16 peak (not published: None); ``int8``
    and ``best`` (TensorRT may pick INT8 for any layer, so INT8 is the ceiling) -> dense INT8, or
    sparse INT8 with ``sparse`` (an engine built with 2:4 sparsity). A DLA peak is for all the
    module's DLAs together. None when the module is unknown or the figure is not published.
    """
    peaks = ORIN_PEAKS.get(module or "")
    if peaks is None:
        return None
    if engine == "dla":
        if precision not in ("int8", "best"):
            return None
        return peaks.dla_int8_sparse if sparse else peaks.dla_int8_dense
    if precision in ("int8", "best"):
        return peaks.gpu_int8_sparse if sparse else peaks.gpu_int8_dense
    if precision == "fp16":
        return peaks.gpu_fp16_dense
    if precision in ("fp32", "tf32"):
        return peaks.gpu_fp32
    return None


@dataclass(frozen=True)
class Roofline:
    """FLOPs per inference, achieved TFLOP/s at the median latency, and the fraction of peak.

    ``flops_complete`` is False when the FLOP count left ops out (uncounted op types or unknown
    shapes): the achieved figure is then a lower bound. ``note`` says why a figure is missing.
    """

    flops: int | None
    median_ms: float
    achieved_tflops: float | None
    peak_tflops: float | None
    fraction_of_peak: float | None
    precision: str
    module: str | None
    engine: str = "gpu"
    flops_complete: bool = True
    peak_source: str | None = None
    peak_basis: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "flops": self.flops,
            "gflops": None if self.flops is None else self.flops / 1e9,
            "median_ms": self.median_ms,
            "achieved_tflops": self.achieved_tflops,
            "peak_tflops": self.peak_tflops,
            "fraction_of_peak": self.fraction_of_peak,
            "precision": self.precision,
            "module": self.module,
            "engine": self.engine,
            "flops_complete": self.flops_complete,
            "peak_source": self.peak_source,
            "peak_basis": self.peak_basis,
            "note": self.note,
        }


def roofline(
    flops: int | None,
    median_ms: float,
    *,
    precision: str,
    module: str | None,
    engine: str = "gpu",
    sparse: bool = False,
    flops_complete: bool = True,
) -> Roofline:
    """Achieved TFLOP/s = ``flops`` / ``median_ms``; fraction = achieved / the module's peak."""
    notes: list[str] = []
    achieved: float | None = None
    if flops is None:
        notes.append("FLOPs unknown")
    elif median_ms > 0:
        achieved = flops / (median_ms * 1e-3) / 1e12
    if not flops_complete:
        notes.append("FLOP count is partial (uncounted ops): achieved is a lower bound")
    peak = peak_for(module, precision, engine=engine, sparse=sparse)
    if peak is None:
        if module is None:
            notes.append("not a known Jetson Orin module: no peak")
        elif module not in ORIN_PEAKS:
            notes.append(f"no peaks for module '{module}'")
        else:
            notes.append(f"NVIDIA publishes no {engine.upper()} {precision} peak for this module")
    fraction = achieved / peak.value if (achieved is not None and peak is not None) else None
    return Roofline(
        flops=flops,
        median_ms=median_ms,
        achieved_tflops=achieved,
        peak_tflops=None if peak is None else peak.value,
        fraction_of_peak=fraction,
        precision=precision,
        module=module,
        engine=engine,
        flops_complete=flops_complete,
        peak_source=None if peak is None else peak.source,
        peak_basis=None if peak is None else peak.basis,
        note="; ".join(notes),
    )
