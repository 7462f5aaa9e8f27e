"""``orinbench demo``: the sample BEV model, benchmarked and gated, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.run import bench_model
from ..demo import best_backend, default_size, demo_targets, prepare_demo_model
from ..gate import gate
from ._common import Telemetry, add_measure_args, add_output_args, finish_result, protocol_from_args
from ._outputs import check_outputs
from ._progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="benchmark the bundled sample BEV model and check it against the demo targets",
        description="Generate the bundled camera-only BEV sample model, benchmark it on the best "
        "backend available (TensorRT if importable, else ONNX Runtime), check P99 < 80 ms, "
        "FPS > 12 (and mean power < 60 W where measured), print a table, write the result JSON.",
    )
    p.add_argument(
        "--size",
        choices=("tiny", "full"),
        default=None,
        help="sample model size (default: full on TensorRT, tiny on ONNX Runtime)",
    )
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("orinbench-demo"),
        help="where the model and the result go (default ./orinbench-demo)",
    )
    add_measure_args(p, duration=5.0)
    add_output_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    backend = best_backend() if args.backend == "auto" else args.backend
    size = args.size or default_size(backend)
    if args.out is None:
        args.out = args.workdir / "result.json"
    check_outputs(args, ("out", "history"), folders=("workdir",))
    warmup, stop = protocol_from_args(args)
    tel = Telemetry(args)
    model = prepare_demo_model(args.workdir, size=size, seed=args.seed)
    if not (args.quiet or args.json):
        print(f"demo: sample BEV model ({size}) at {model}, backend {backend}")
    progress = Progress("demo", enabled=not (args.quiet or args.json))
    try:
        if backend == "tensorrt":
            from ._bench_trt import bench_onnx_with_tensorrt

            result = bench_onnx_with_tensorrt(
                model,
                args=args,
                warmup=warmup,
                stop=stop,
                tel=tel,
                progress=progress,
                precision="fp16",
            )
        else:
            result = bench_model(
                model,
                backend=backend,
                seed=args.seed,
                name=f"sample-bev-{size}",
                warmup=warmup,
                stop=stop,
                on_progress=progress,
                **tel.bench_kwargs(),
            )
    finally:
        progress.close()
    result = tel.finalize(result)
    finish_result(result, args, command="demo")
    report = gate(result, targets=demo_targets(with_power=result.power is not None))
    if not args.json:
        print()
        print(report.to_text())
    return report.exit_code
