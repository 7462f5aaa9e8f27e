"""``orinbench decide MODEL.onnx``: FP32 vs FP16 vs INT8 (and DLA), one table, one choice."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._io import finite_or_null
from ..bench.run import BACKENDS
from ..errors import UsageError
from ._common import (
    Telemetry,
    add_measure_args,
    add_model_input_args,
    add_output_args,
    ort_options,
    parse_shapes,
    protocol_from_args,
)
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decide",
        help="which precision to ship: FP32/FP16/INT8 (and DLA) benchmarked and compared",
        description="Make the FP32, FP16 and INT8 variants of an ONNX model (ONNX Runtime: "
        "FP16-converted and Q/DQ models; TensorRT: engines, and DLA engines with --dla), benchmark "
        "each with the same protocol, measure each one's accuracy loss against the FP32 model on "
        "the calibration data or --holdout, and choose the variant that meets the targets with "
        "the least energy per inference (the lowest P99 when power is not measured). Prints one "
        "table and why each other variant loses; --out writes the chosen variant's result with "
        "the table (extra.decide). Exit 0: a variant was chosen; 1: none meets the targets; "
        "2: bad input (docs/decide.md).",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx (FP32)")
    p.add_argument("--backend", choices=BACKENDS, default="onnxruntime", help="default onnxruntime")
    p.add_argument(
        "--variants",
        default=None,
        metavar="V1,V2",
        help="variants to compare (default fp32,fp16,int8; with --dla also dla-fp16,dla-int8)",
    )
    data = p.add_argument_group("data")
    cal = data.add_mutually_exclusive_group()
    cal.add_argument(
        "--calib-data", type=Path, default=None, metavar="DIR", help="calibration samples (.npz)"
    )
    cal.add_argument(
        "--calib-cache",
        type=Path,
        default=None,
        metavar="FILE",
        help="TensorRT calibration cache (tensorrt backend); checked against the network",
    )
    data.add_argument(
        "--holdout",
        type=Path,
        default=None,
        metavar="DIR",
        help="samples to measure accuracy on (default: the calibration data)",
    )
    data.add_argument(
        "--max-samples", type=int, default=None, metavar="N", help="use at most N accuracy samples"
    )
    d = p.add_argument_group("decision")
    d.add_argument(
        "--targets", type=Path, default=None, metavar="FILE", help="targets file (TOML, as gate)"
    )
    d.add_argument(
        "--max-loss",
        type=float,
        default=1.0,
        metavar="PCT",
        help="accuracy budget in percent when the targets file has no accuracy target "
        "(default 1.0; accuracy.loss_pct, docs/decide.md)",
    )
    d.add_argument(
        "--dla", action="store_true", help="also DLA variants (core 0, GPU fallback); tensorrt"
    )
    d.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="build each engine N times with a shared timing cache and N times without (ONNX "
        "Runtime: benchmark N times), report the spread, keep the fastest",
    )
    d.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the variants are written (default orinbench-decide/<model>)",
    )
    add_model_input_args(
        p,
        threads_alias=True,
        inputs_help="benchmark every variant on these inputs (.npz, keys = input names) instead "
        "of generated ones",
    )
    add_measure_args(p)
    add_output_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..decide.repeat import check_repeat
    from ..decide.run import decide_model
    from ..decide.table import format_table
    from ..gate.targets import load_targets

    check_outputs(args, ("out", "calib_cache", "history"), folders=("workdir",))
    check_repeat(args.repeat)
    if args.max_samples is not None and args.max_samples < 1:
        raise UsageError("--max-samples must be >= 1", fix="e.g. --max-samples 16")
    targets = load_targets(args.targets) if args.targets is not None else None
    warmup, stop = protocol_from_args(args)
    shapes = parse_shapes(args.shape)
    ort = ort_options(args)
    variants = args.variants.split(",") if args.variants is not None else None
    quiet = args.quiet or args.json

    def step(text: str) -> None:
        if not quiet:
            print(f"decide: {text}", file=sys.stderr)

    def telemetry() -> dict[str, Any]:
        tel = Telemetry(args)
        return {**tel.bench_kwargs(), "finalize": tel.finalize}

    outcome = decide_model(
        args.model,
        backend=args.backend,
        variants=variants,
        calib_data=args.calib_data,
        calib_cache=args.calib_cache,
        holdout=args.holdout,
        dla=args.dla,
        targets=targets,
        max_loss_pct=args.max_loss,
        repeat=args.repeat,
        workdir=args.workdir,
        warmup=warmup,
        stop=stop,
        seed=args.seed,
        max_samples=args.max_samples,
        threads=ort.get("intra_op_threads"),
        providers=ort.get("providers"),
        shapes=shapes,
        inputs_npz=args.inputs,
        telemetry=telemetry,
        on_step=step,
    )
    result = outcome.result
    if args.out is not None:
        from ..results.io import save_result

        save_result(result, args.out)
    if not args.no_history:
        from ..history.store import append_to_history

        note = append_to_history(result, command="decide", path=args.history)
        if note:
            print(f"history: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(finite_or_null(result.to_dict()), indent=2, allow_nan=False))
    else:
        print(format_table(outcome.decision))
        for label, rep in (result.extra["decide"].get("repeat") or {}).items():
            print(f"\n{label} repeated:")
            for sentence in rep["sentences"]:
                print(f"  {sentence}")
        if args.out is not None:
            print(f"\nresult of the chosen variant written to {args.out}")
    return outcome.exit_code
