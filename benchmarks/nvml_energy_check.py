"""NVML energy check: the integral of sampled GPU power against NVML's own energy counter.

    python benchmarks/nvml_energy_check.py [--seconds 20] [--idle 2] [--period 0.02]
                                           [--device 0] [--size 8192] [--reading both]

On a machine with an NVIDIA GPU, PyTorch and nvidia-ml-py: starts orinbench's NVML power source,
idles for ``--idle`` seconds, runs a half-precision matrix-multiply load for ``--seconds``, idles
again, stops the source; then integrates the samples (orinbench.telemetry.power.summarize_power,
trapezoidal, over the whole window) and compares the result with the delta of
``nvmlDeviceGetTotalEnergyConsumption`` read at start and stop. The idle phases put load steps
inside the window, so the comparison also exercises how the edges of a load are caught.

Prints, per NVML reading (``instant``: field NVML_FI_DEV_POWER_INSTANT; ``average``:
nvmlDeviceGetPowerUsage, a 1 s average on recent GPUs), the samples, the achieved period, mean and
peak power, the integrated energy, the counter's energy and their difference in percent.

Exit status: 0 when the primary reading (instant where supported) agrees within 5 %, 1 when it does
not, 2 when NVML, its energy counter, PyTorch or a CUDA GPU is missing.

Running from a checkout: the repository root is put on sys.path, so orinbench need not be
installed. If nvidia-ml-py is not installed on the GPU machine, install it into a folder
(``pip install --target .nvml nvidia-ml-py``) and run with ``PYTHONPATH=.nvml``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orinbench.errors import OrinbenchError
from orinbench.telemetry.power import summarize_power

TOLERANCE_PCT = 5.0


class Unavailable(Exception):
    """Something the check needs is missing (exit status 2)."""


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    p.add_argument("--idle", type=float, default=2.0, help="idle before and after (default 2)")
    p.add_argument("--period", type=float, default=0.02, help="sample period (default 0.02 s)")
    p.add_argument("--device", type=int, default=0, help="GPU index (default 0)")
    p.add_argument("--size", type=int, default=8192, help="matrix size (default 8192)")
    p.add_argument(
        "--reading",
        choices=("auto", "instant", "average", "both"),
        default="both",
        help="NVML power reading(s) to check (default both where supported)",
    )
    return p.parse_args(argv)


def _load(torch, device: int, size: int):
    dev = torch.device(f"cuda:{device}")
    a = torch.randn(size, size, device=dev, dtype=torch.float16)
    b = torch.randn(size, size, device=dev, dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(dev)

    def run(seconds: float) -> int:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(4):
                a @ b
            torch.cuda.synchronize(dev)
            n += 4
        return n

    return run


def _check(reading: str, args: argparse.Namespace, run_load) -> dict:
    from orinbench.telemetry.sources.nvml import NvmlPowerSource

    src = NvmlPowerSource(period_s=args.period, index=args.device, reading=reading)
    if not src.has_energy_counter:
        raise Unavailable(
            f"GPU {args.device} ({src.gpu_name}) has no NVML energy counter "
            "(nvmlDeviceGetTotalEnergyConsumption needs Volta or later)"
        )
    src.start()
    time.sleep(args.idle)
    matmuls = run_load(args.seconds)
    time.sleep(args.idle)
    trace = src.stop()
    summary = summarize_power(trace, inferences=max(matmuls, 1), window_s=trace.duration_s)
    counter = trace.energy_counter_j or 0.0
    integrated = summary["energy"]["j"]
    return {
        "reading": src.reading,
        "gpu": src.gpu_name,
        "samples": len(trace.samples),
        "period": trace.period_s_achieved,
        "duration": trace.duration_s,
        "mean_w": summary["mean_w"],
        "peak_w": summary["peak_w"],
        "integrated_j": integrated,
        "counter_j": counter,
        "diff_pct": 100.0 * (integrated - counter) / counter if counter else float("inf"),
        "matmuls": matmuls,
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    try:
        from orinbench.telemetry.sources.nvml import NvmlPowerSource

        probe = NvmlPowerSource(period_s=args.period, index=args.device)
    except OrinbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("error: PyTorch is not installed; it provides the GPU load", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    readings = {"both": ["instant", "average"], "auto": [probe.reading]}.get(
        args.reading, [args.reading]
    )
    if probe.reading == "average" and "instant" in readings:
        print("note: NVML_FI_DEV_POWER_INSTANT is not supported here; checking 'average' only")
        readings = ["average"]
    run_load = _load(torch, args.device, args.size)
    print(
        f"GPU {args.device}: {probe.gpu_name}; torch {torch.__version__}; "
        f"load {args.seconds:g} s between {args.idle:g} s idle phases; "
        f"period {args.period:g} s; tolerance {TOLERANCE_PCT:g} %"
    )
    rows = []
    for reading in readings:
        try:
            rows.append(_check(reading, args, run_load))
        except (OrinbenchError, Unavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    head = (
        f"{'reading':<8} {'samples':>7} {'period s':>9} {'mean W':>8} {'peak W':>8} "
        f"{'integral J':>11} {'counter J':>10} {'diff %':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['reading']:<8} {r['samples']:>7d} {r['period'] or 0:>9.4f} {r['mean_w']:>8.1f} "
            f"{r['peak_w']:>8.1f} {r['integrated_j']:>11.1f} {r['counter_j']:>10.1f} "
            f"{r['diff_pct']:>+7.2f}"
        )
    primary = rows[0]
    ok = abs(primary["diff_pct"]) <= TOLERANCE_PCT
    verdict = "within" if ok else "OUTSIDE"
    print(
        f"\n{primary['reading']} reading: integrated energy is {primary['diff_pct']:+.2f} % "
        f"from NVML's counter ({verdict} ±{TOLERANCE_PCT:g} %)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
