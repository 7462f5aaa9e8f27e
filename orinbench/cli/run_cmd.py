"""``orinbench run RECIPE.toml``: time a multi-stage pipeline end to end and per stage, then gate.

Builds the stages that are not up to date (TensorRT), runs frame after frame with each stage's
outputs feeding the next on the device, and prints the frame's latency, the breakdown per stage
(P50/P95/P99, share of the frame, achieved TFLOP/s and fraction of the module's peak), and the
verdicts of the recipe's ``[targets]``. The exit code is the gate's (0 pass, 1 fail, 2 error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..pipeline.graph import PipelineGraph
from ..pipeline.models import SIZES
from ..pipeline.recipe import Recipe, load_recipe
from ..pipeline.run import BACKENDS, check_recipe, resolve_backend, run_recipe
from ..results.schema import Result
from ._common import (
    Telemetry,
    add_measure_args,
    add_model_input_args,
    add_output_args,
    finish_result,
    ort_options,
    parse_shapes,
    protocol_from_args,
)
from ._outputs import check_outputs
from ._progress import Progress


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="benchmark a multi-stage pipeline (a recipe) end to end and per stage",
        description="Run a pipeline recipe (engines/NAME.toml): build the stages that are not "
        "up to date, run frames with each stage feeding the next on the device, and report the "
        "frame latency, the per-stage breakdown and roofline, and the recipe's targets. Exit 0 "
        "when every target passes, 1 when one fails, 2 on bad input.",
    )
    p.add_argument("recipe", type=Path, metavar="RECIPE.toml", help="the pipeline recipe")
    p.add_argument(
        "--size",
        choices=SIZES,
        default="full",
        help="size of the zoo models the recipe names (default full; tiny for CI)",
    )
    p.add_argument(
        "--backend",
        choices=(*BACKENDS, "auto"),
        default="auto",
        help="auto: tensorrt where it is installed, else onnxruntime (default)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where zoo models (and their engines) are cached "
        "(default $XDG_CACHE_HOME/orinbench or ~/.cache/orinbench)",
    )
    p.add_argument(
        "--no-transfers",
        action="store_true",
        help="time without copying frame inputs in and final outputs out",
    )
    p.add_argument(
        "--no-roofline", action="store_true", help="skip the FLOP count and roofline per stage"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the recipe (models, wiring, shapes) and print its stages; exit 0 if good",
    )
    add_model_input_args(
        p,
        per=" per stage",
        inputs_help="frame inputs from a .npz (keys = frame input names) instead of random",
    )
    g = p.add_argument_group("gate")
    g.add_argument(
        "--no-gate",
        action="store_true",
        help="do not apply the recipe's [targets] (exit 0 after a good run)",
    )
    g.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="BASELINE.json",
        help="also compare with this baseline result",
    )
    g.add_argument(
        "--inconclusive-ok", action="store_true", help="let inconclusive baseline comparisons pass"
    )
    add_measure_args(p)
    add_output_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, ("out", "history"), folders=("cache_dir",))
    recipe = load_recipe(args.recipe)
    warmup, stop = protocol_from_args(args)
    shapes = parse_shapes(args.shape)
    quiet = bool(args.quiet or args.json)
    baseline = None
    if args.baseline is not None:
        if args.no_gate:
            raise UsageError("--baseline and --no-gate contradict each other", fix="drop one")
        from ..results.io import load_result

        baseline = load_result(args.baseline)
    # everything that can fail without a device fails here, before telemetry is probed
    graph = check_recipe(
        recipe, size=args.size, cache_dir=args.cache_dir, shapes=shapes, inputs_npz=args.inputs
    )
    if args.check:
        print(format_graph(recipe, graph))
        return 0
    opts = ort_options(args)
    if opts and args.backend == "tensorrt":
        raise UsageError(
            "--ort-providers and --ort-threads apply to ONNX Runtime, not --backend tensorrt",
            fix="drop them, or pass --backend onnxruntime",
        )
    backend = resolve_backend(args.backend)
    if opts and backend != "onnxruntime":
        raise UsageError(
            "--ort-providers and --ort-threads apply to ONNX Runtime",
            why=f"--backend auto chose {backend}",
            fix="pass --backend onnxruntime, or drop them",
        )
    tel = Telemetry(args)

    def event(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    progress = Progress(f"run {recipe.name}", enabled=not quiet)
    try:
        result = run_recipe(
            recipe,
            backend=backend,
            size=args.size,
            cache_dir=args.cache_dir,
            shapes=shapes,
            inputs_npz=args.inputs,
            seed=args.seed,
            warmup=warmup,
            stop=stop,
            transfers=not args.no_transfers,
            runner_options=opts,
            roofline_stages=not args.no_roofline,
            on_progress=progress,
            on_event=event,
            **tel.bench_kwargs(),
        )
    finally:
        progress.close()
    result = tel.finalize(result)
    finish_result(result, args, command="run")
    out = sys.stderr if args.json else sys.stdout
    print("\n" + format_stages(result), file=out)
    if args.no_gate or (recipe.targets is None and baseline is None):
        return 0
    from ..gate import gate

    report = gate(
        result, targets=recipe.targets, baseline=baseline, inconclusive_ok=args.inconclusive_ok
    )
    print("\n" + report.to_text(), file=out)
    return report.exit_code


def _ms(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def _roof(r: Mapping[str, Any] | None) -> tuple[str, str]:
    if not r:
        return "-", "-"
    tf = r.get("achieved_tflops")
    frac = r.get("fraction_of_peak")
    tf_text = "-" if tf is None else (f"{tf:.3g}" + ("" if r.get("flops_complete", True) else "+"))
    return tf_text, "-" if frac is None else f"{frac:.1%}"


def format_stages(result: Result) -> str:
    """The per-stage breakdown as a table: latency percentiles, share, roofline."""
    stages = result.stages or {}
    header = [
        "stage",
        "kind",
        "precision",
        "P50 ms",
        "P95 ms",
        "P99 ms",
        "share",
        "TFLOP/s",
        "% peak",
    ]
    rows = [header]
    for name, st in stages.items():
        lat = st.get("latency") or {}
        share = st.get("share")
        tf, frac = _roof(st.get("roofline"))
        rows.append(
            [
                name,
                str(st.get("kind", "")),
                str(st.get("precision") or "-"),
                _ms(lat.get("p50_ms")),
                _ms(lat.get("p95_ms")),
                _ms(lat.get("p99_ms")),
                f"{share:.1%}" if isinstance(share, (int, float)) else "-",
                tf,
                frac,
            ]
        )
    frame = result.stats.get("latency") or {}
    overhead = ((result.extra or {}).get("pipeline") or {}).get("overhead_ms") or {}
    rows.append(
        [
            "(overhead)",
            "",
            "",
            _ms(overhead.get("p50_ms")),
            _ms(overhead.get("p95_ms")),
            _ms(overhead.get("p99_ms")),
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "frame",
            "",
            str(result.config.precision),
            _ms(frame.get("p50_ms")),
            _ms(frame.get("p95_ms")),
            _ms(frame.get("p99_ms")),
            "100.0%",
            "",
            "",
        ]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for i, r in enumerate(rows):
        pairs = enumerate(zip(r, widths, strict=True))
        cells = [c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
        if i == 0 or i == len(rows) - 3:
            lines.append("  ".join("-" * w for w in widths))
    notes = sorted(
        {
            str(st["roofline"]["note"])
            for st in stages.values()
            if (st.get("roofline") or {}).get("note")
        }
    )
    text = "per stage (share = stage P50 / frame P50; '+' = FLOPs partly counted)\n"
    text += "\n".join(lines)
    if notes:
        text += "\nroofline: " + " | ".join(notes)
    return text


def format_graph(recipe: Recipe, graph: PipelineGraph) -> str:
    """The checked recipe: frame inputs, each stage in run order with where its inputs come
    from, and the pipeline outputs."""
    lines = [f"recipe {recipe.name}: OK ({len(graph.order)} stages)"]
    for name, spec in graph.frame_inputs.items():
        dims = "x".join(str(d) for d in spec.shape)
        lines.append(f"  input  {name} {spec.dtype} {dims}")
    for stage in graph.order:
        st = recipe.stage(stage)
        what = st.source if st.kind == "custom" else f"{st.source} ({st.precision})"
        lines.append(f"  stage  {stage}: {what}")
        for inp, ref in graph.sources[stage].items():
            lines.append(f"           {inp} <- {ref}")
    for key, ref in graph.outputs.items():
        lines.append(f"  output {key} <- {ref}")
    return "\n".join(lines)
