"""``orinbench quantize MODEL.onnx --data DIR --out MODEL.qdq.onnx``: explicit INT8 on the CPU."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..precision.qdq import DEFAULT_OP_TYPES, DEFAULT_PERCENTILE, METHODS
from ._common import add_model_input_args, ort_options
from ._outputs import check_outputs
from ._progress import Progress
from .calibrate_cmd import add_data_args, shaped_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize",
        help="make an explicitly quantized (Q/DQ INT8) ONNX model with ONNX Runtime, on the CPU",
        description="Quantize an ONNX model with ONNX Runtime's static quantization in the form "
        "TensorRT builds as explicit INT8: QDQ format, symmetric INT8 activations and per-channel "
        "weights, Q/DQ on the inputs of Conv/ConvTranspose/MatMul/Gemm. Works with TensorRT 10 "
        "and 11 (which has no implicit calibration).",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx (FP32)")
    add_data_args(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="MODEL.qdq.onnx",
        help="Q/DQ model to write (atomically)",
    )
    p.add_argument(
        "--method",
        choices=tuple(METHODS),
        default="entropy",
        help="activation calibration (default entropy)",
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        metavar="P",
        help=f"percentile of |x| kept by --method percentile (default {DEFAULT_PERCENTILE})",
    )
    p.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor instead of per output channel",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NODE|GLOB|OPTYPE",
        help="keep in float: a node name, a glob over node names ('heads.*') or an op "
        "type ('Softmax'); repeatable (BEV heads are often sensitive)",
    )
    p.add_argument(
        "--op-types",
        default=",".join(DEFAULT_OP_TYPES),
        metavar="T1,T2",
        help=f"op types whose inputs are quantized (default {','.join(DEFAULT_OP_TYPES)})",
    )
    # --ort-* configure the session that runs the calibration samples (precision.qdq)
    add_model_input_args(p, npz=False)
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="write the model even when nothing in it was quantized (default: exit 2)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def op_types_arg(text: str) -> tuple[str, ...]:
    from ..errors import UsageError

    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise UsageError("--op-types is empty", fix=f"pass e.g. {','.join(DEFAULT_OP_TYPES)}")
    return items


def run(args: argparse.Namespace) -> int:
    from ..model.load import load_model
    from ..precision.qdq import run_quantize, split_excludes

    check_outputs(args, ("out",))
    excludes = split_excludes(load_model(args.model, load_external_data=False), args.exclude)
    op_types = op_types_arg(args.op_types)
    ort = ort_options(args)
    progress = Progress("calibrate", enabled=not args.json)
    try:
        result = run_quantize(
            args.model,
            data=shaped_data(args, args.model),
            out_path=args.out,
            max_samples=args.max_samples,
            op_types=op_types,
            method=args.method,
            percentile=args.percentile,
            per_channel=not args.per_tensor,
            exclude_nodes=excludes.nodes,
            exclude_op_types=excludes.op_types,
            allow_empty=args.allow_empty,
            ort=ort,
            on_progress=lambda done, frac: progress.step(frac, f"{done} samples"),
        )
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    s = result.summary
    total = result.validate_s + result.quantize_s
    print(
        f"quantized {args.model} -> {result.out_path} ({result.method}, {result.sample_count} "
        f"samples from {result.data_source})"
    )
    print(
        f"nodes     {len(s.quantized)} of {len(s.quantized) + len(s.float_nodes)} "
        f"{'/'.join(op_types)} nodes in INT8; {s.quantize_nodes} QuantizeLinear, "
        f"{s.dequantize_nodes} DequantizeLinear"
    )
    if s.in_subgraphs:
        print(
            f"subgraphs {s.in_subgraphs} {'/'.join(op_types)} node(s) inside If/Loop/Scan "
            "bodies were not quantized (ONNX Runtime's quantizer does not reach them)"
        )
    if s.quantize_nodes == 0:
        print("empty     nothing was quantized (--allow-empty): the model is still float")
    for note in result.notes:
        print(f"note      {note}")
    if s.float_nodes:
        shown = ", ".join(s.float_nodes[:8]) + (", ..." if len(s.float_nodes) > 8 else "")
        print(f"float     {shown}")
    print(
        f"time      {total:.2f} s ({result.validate_s:.2f} s loading and validating the data, "
        f"{result.quantize_s:.2f} s calibrating and quantizing)"
    )
    print(
        f"next      orinbench accuracy {result.out_path} --reference {args.model} --data ...",
        file=sys.stderr,
    )
    return 0
