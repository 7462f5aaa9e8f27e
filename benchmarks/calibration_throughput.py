"""Samples per second of ``orinbench quantize`` and ``orinbench accuracy`` on the sample BEV model.

Exports the bundled sample model (``--size full`` by default: 6 x 3 x 256 x 704 images), writes a
synthetic calibration set of ``--samples`` samples (not timed), then times, on the CPU with ONNX
Runtime:

* quantize: loading and validating the dataset, then calibrating (ONNX Runtime's calibrator on
  the model with every quantized op's input as an extra output, and the entropy threshold search)
  and writing the Q/DQ model;
* accuracy: loading and validating the dataset, reading samples during the run, the FP32
  reference and the Q/DQ candidate inference, and the metric computation (the rest).

For each, samples/s over the whole command and the share of data loading and validation, which
must stay a small part of the time.

    python benchmarks/calibration_throughput.py [--size full|tiny] [--samples 8]
        [--method entropy|percentile|minmax] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from orinbench.accuracy.compare import evaluate_accuracy
from orinbench.calib.specs import model_io_specs
from orinbench.calib.synthetic import write_synthetic_dataset
from orinbench.errors import OrinbenchError
from orinbench.precision.qdq import METHODS, run_quantize
from orinbench.zoo.sample_bev import export_sample_bev


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("full", "tiny"), default="full")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--method", choices=tuple(METHODS), default="entropy")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="orinbench-bench-calib-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model = export_sample_bev(work / f"sample_bev_{args.size}.onnx", size=args.size)
        inputs, _ = model_io_specs(model)
        data = write_synthetic_dataset(work / "calib", inputs=inputs, count=args.samples, seed=0)
        prep = time.perf_counter() - t0
        mb = sum(p.stat().st_size for p in data.iterdir()) / 1e6
        print(
            f"model     sample_bev {args.size}: {model.stat().st_size / 1e6:.1f} MB, input "
            f"{'x'.join(str(d) for d in inputs[0].shape)}"
        )
        print(
            f"data      {args.samples} synthetic samples, {mb:.1f} MB on disk "
            f"(export and generation {prep:.1f} s, not timed below)"
        )

        q = run_quantize(model, data=data, out_path=work / "model.qdq.onnx", method=args.method)
        q_total = q.validate_s + q.quantize_s
        print()
        print(
            f"quantize  ({args.method}) {q.sample_count / q_total:8.2f} samples/s   "
            f"total {q_total:7.2f} s"
        )
        print(f"          load + validate  {q.validate_s:7.2f} s  ({q.validate_s / q_total:6.1%})")
        print(f"          calibrate + write {q.quantize_s:6.2f} s  ({q.quantize_s / q_total:6.1%})")
        print(
            f"          {len(q.summary.quantized)} nodes INT8, "
            f"{q.summary.quantize_nodes} QuantizeLinear nodes"
        )

        r = evaluate_accuracy(
            q.out_path, reference=model, data=data, threads=args.threads, heatmaps=None
        )
        t = r.timing
        data_s = t["validate_s"] + t["load_s"]
        other = t["total_s"] - data_s - t["reference_s"] - t["candidate_s"]
        print()
        print(
            f"accuracy  {r.sample_count / t['total_s']:8.2f} samples/s   total "
            f"{t['total_s']:7.2f} s"
        )
        print(f"          load + validate  {data_s:7.2f} s  ({data_s / t['total_s']:6.1%})")
        print(
            f"          FP32 reference   {t['reference_s']:7.2f} s  "
            f"({t['reference_s'] / t['total_s']:6.1%})"
        )
        print(
            f"          Q/DQ candidate   {t['candidate_s']:7.2f} s  "
            f"({t['candidate_s'] / t['total_s']:6.1%})"
        )
        print(f"          metrics, setup   {other:7.2f} s  ({other / t['total_s']:6.1%})")
        print(f"          rel_l2.max {r.rel_l2_max:.4f}, cosine.min {r.cosine_min:.5f}")
        print()
        print(f"peak RSS  {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OrinbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
