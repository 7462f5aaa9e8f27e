"""``orinbench calib inspect|diff|validate|generate``: calibration caches and datasets."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from ._common import add_model_input_args, parse_shapes, seed_arg
from ._outputs import check_outputs
from .calibrate_cmd import add_data_args, shaped_data

if TYPE_CHECKING:
    from ..backends.tensorrt.cache_usage import CacheMatch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calib",
        help="inspect and compare calibration caches; validate or generate calibration data",
        description="Tools for TensorRT calibration caches and calibration datasets.",
    )
    actions = p.add_subparsers(dest="calib_action", metavar="ACTION", parser_class=type(p))

    i = actions.add_parser(
        "inspect",
        help="header, calibrator, TensorRT version, scale range",
        description="Show what a calibration cache holds. Reading checks the "
        "header; warns when the cache comes from another TensorRT release "
        "(the installed one, or --trt-version) or lacks tensors of --model. "
        "--against MODEL.onnx lists the names that differ between the cache and the network "
        "(why TensorRT would leave layers out of INT8).",
    )
    i.add_argument("cache", type=Path, help="calibration cache")
    i.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="MODEL.onnx",
        help="check that the cache covers this network's tensors",
    )
    i.add_argument(
        "--against",
        type=Path,
        default=None,
        metavar="MODEL.onnx",
        help="match the cache's tensor names with this network's: list cache tensors with no "
        "match in the network and network tensors without a scale",
    )
    i.add_argument(
        "--trt-version",
        default=None,
        metavar="X.Y.Z",
        help="TensorRT version to check against (default: the installed one, if any)",
    )
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(handler=run_inspect)

    d = actions.add_parser(
        "diff",
        help="per-tensor scale drift between two caches",
        description="Compare two calibration caches: per-tensor relative "
        "scale change (largest first) and tensors only in one. Exit code 1 "
        "when --max-drift is given and exceeded.",
    )
    d.add_argument("a", type=Path, help="first cache (the reference)")
    d.add_argument("b", type=Path, help="second cache")
    d.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="show the N largest drifts (default 20; 0: all)",
    )
    d.add_argument(
        "--max-drift",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail (exit 1) when a scale moved by more than FRACTION (0.1 = 10%%)",
    )
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(handler=run_diff)

    v = actions.add_parser(
        "validate",
        help="check calibration data against a model",
        description="Validate every sample (names, shapes, dtypes, NaN/Inf) "
        "against the model's inputs; the error names the first bad file and "
        "key.",
    )
    v.add_argument("model", type=Path, help="MODEL.onnx")
    add_data_args(v)
    add_model_input_args(v, npz=False, ort=False)
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(handler=run_validate)

    g = actions.add_parser(
        "generate",
        help="write a synthetic calibration set for a model",
        description="Write COUNT synthetic samples (camera-like images for "
        "image inputs) and a manifest.toml. For tests and demos; calibrate "
        "real deployments with real data.",
    )
    g.add_argument("model", type=Path, help="MODEL.onnx")
    g.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
    g.add_argument("--count", type=int, default=16, help="number of samples (default 16)")
    g.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    g.add_argument(
        "--source",
        default="orinbench calib generate (synthetic)",
        help="the manifest's 'source' text",
    )
    g.add_argument("--force", action="store_true", help="replace .npz files already in DIR")
    add_model_input_args(g, npz=False, ort=False)
    g.set_defaults(handler=run_generate)

    def _no_action(_args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return ExitCode.USAGE

    p.set_defaults(handler=_no_action)


def _installed_trt_version() -> str | None:
    from .. import _lazy

    if not _lazy.is_available("tensorrt"):
        return None
    try:
        return str(_lazy.tensorrt().__version__)
    except Exception:  # a broken TensorRT install only loses the version check
        return None


def _g(x: float) -> str:
    return f"{x:.6g}"


def run_inspect(args: argparse.Namespace) -> int:
    from ..calib.cache import check_cache, network_activation_tensors, read_cache
    from ..calib.trt_calibrator import CALIBRATOR_CLASSES
    from ..model.load import load_model

    cache = read_cache(args.cache)
    version = args.trt_version or _installed_trt_version()
    tensors = None
    if args.model is not None:
        tensors = network_activation_tensors(load_model(args.model, load_external_data=False))
    warnings = check_cache(
        cache, trt_version=version, network_tensors=tensors, source=str(args.cache)
    )
    summary = cache.summary()
    match = None
    if args.against is not None:
        from ..backends.tensorrt.cache_usage import inspect_against

        match = inspect_against(args.cache, args.against)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        data = {"path": str(args.cache), **summary, "warnings": warnings}
        if match is not None:
            data["against_model"] = str(args.against)
            data["against"] = match.to_dict()
        print(json.dumps(data, indent=2))
        return 0
    cls = CALIBRATOR_CLASSES.get(cache.calibrator)
    rng = summary["scale"]
    lines = [
        f"cache        {args.cache}",
        f"header       {cache.header}",
        f"calibrator   {cache.calibrator}" + (f" (trt.{cls})" if cls else ""),
        f"TensorRT     {cache.trt_version or 'unknown (' + cache.version_code + ')'}",
        f"tensors      {len(cache.scales)}",
    ]
    if rng:
        lines.append(
            f"scale        min {_g(rng['min'])} ({rng['min_tensor']})  median {_g(rng['median'])}"
            f"  max {_g(rng['max'])} ({rng['max_tensor']})"
        )
        lines.append(
            f"range        |x| up to {_g(rng['dynamic_range_min'])} .. "
            f"{_g(rng['dynamic_range_max'])} (scale x 127)"
        )
    if summary["zero_scales"]:
        lines.append(f"zero scales  {summary['zero_scales']}")
    if match is not None:
        lines += _against_lines(args.against, match)
    print("\n".join(lines))
    return 0


def _names(names: tuple[str, ...], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f" ({shown}{', ...' if len(names) > limit else ''})" if names else ""


def _against_lines(model: Path, match: CacheMatch) -> list[str]:
    """``--against``: how the cache's tensor names meet the network's."""
    lines = [
        f"against      {model}: {len(match.matched)} of {len(match.network_tensors)} network "
        "tensors have a usable scale",
        f"cache only   {len(match.cache_only)} cache tensors with no match in the network"
        + _names(match.cache_only),
        f"no scale     {len(match.network_only)} network tensors the cache has no scale for"
        + _names(match.network_only),
    ]
    if match.unusable:
        lines.append(
            f"unusable     {len(match.unusable)} network tensors with a zero, negative or "
            "non-finite scale" + _names(match.unusable)
        )
    return lines


def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "inf"
    return f"{x * 100:+.2f} %"


def run_diff(args: argparse.Namespace) -> int:
    from ..calib.cache import diff_caches, read_cache

    if args.top < 0:
        raise UsageError(f"--top must be 0 or more, not {args.top}")
    a, b = read_cache(args.a), read_cache(args.b)
    diff = diff_caches(a, b)
    top = None if args.top == 0 else args.top
    failed = args.max_drift is not None and diff.max_abs_rel_change > args.max_drift
    if args.json:
        print(
            json.dumps(
                {
                    "a": str(args.a),
                    "b": str(args.b),
                    **diff.to_dict(top=top),
                    "max_drift": args.max_drift,
                    "failed": failed,
                },
                indent=2,
            )
        )
        return ExitCode.FAILED if failed else 0
    mx = diff.max_abs_rel_change
    lines = [
        f"A  {a.header}  {args.a} ({len(a.scales)} tensors)",
        f"B  {b.header}  {args.b} ({len(b.scales)} tensors)",
        f"common {len(diff.drifts)}, changed {diff.to_dict()['changed']}, "
        f"max |change| {_pct(mx).lstrip('+')}, "
        f"median |change| {_pct(diff.median_abs_rel_change).lstrip('+')}",
    ]
    for label, names in (("only in A", diff.only_in_a), ("only in B", diff.only_in_b)):
        listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        lines.append(f"{label}: {len(names)}" + (f" ({listed})" if names else ""))
    shown = diff.drifts if top is None else diff.drifts[:top]
    if shown:
        width = min(60, max(len(d.name) for d in shown))
        lines.append("")
        lines.append(f"{'tensor':<{width}}  {'scale A':>12}  {'scale B':>12}  {'change':>10}")
        for d in shown:
            lines.append(
                f"{d.name:<{width}}  {_g(d.scale_a):>12}  {_g(d.scale_b):>12}  "
                f"{_pct(d.rel_change):>10}"
            )
    if args.max_drift is not None:
        verdict = "FAILED" if failed else "ok"
        lines.append("")
        lines.append(
            f"max drift {_pct(mx).lstrip('+')} vs limit {args.max_drift * 100:.2f} %: {verdict}"
        )
    print("\n".join(lines))
    return ExitCode.FAILED if failed else 0


def run_validate(args: argparse.Namespace) -> int:
    from ..calib.dataset import open_dataset
    from ..calib.specs import model_io_specs

    inputs, _ = model_io_specs(args.model)
    ds = open_dataset(shaped_data(args, args.model), inputs=inputs, max_samples=args.max_samples)
    info = {
        "source": ds.source,
        "kind": ds.kind,
        "sample_count": ds.count,
        "bytes": ds.nbytes,
        "validate_s": ds.validate_s,
        "manifest": ds.manifest.to_dict() if ds.manifest else None,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{ds.count} samples OK in {ds.source} ({ds.nbytes / 1e6:.1f} MB, checked in "
        f"{ds.validate_s:.2f} s)"
    )
    if ds.manifest is not None:
        m = ds.manifest
        print(f"manifest: source {m.source!r}, preprocessing {m.preprocessing!r}, seed {m.seed}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from ..calib.specs import model_io_specs
    from ..calib.synthetic import write_synthetic_dataset
    from ..model.feeds import check_feed_fits
    from ..model.shapes import resolve_input_shapes

    check_outputs(args, (), folders=("out",))
    if args.count < 1:
        raise UsageError(f"--count must be at least 1, not {args.count}", fix="e.g. --count 16")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(
            f"--out {args.out} is a file, not a folder", fix="name a folder for the samples"
        )
    if args.out.exists() and any(args.out.glob("*.npz")) and not args.force:
        raise UsageError(
            f"{args.out} already holds .npz samples",
            fix="pass --force to replace them, or choose another folder",
        )
    # everything that can be refused is refused before --force removes the old samples:
    # the model, and a size for every dynamic dimension (never an invented one)
    inputs, _ = model_io_specs(args.model)
    shapes = resolve_input_shapes(inputs, parse_shapes(args.shape))
    check_feed_fits(inputs, shapes)
    if args.force:
        for old in args.out.glob("*.npz"):
            old.unlink()
    out = write_synthetic_dataset(
        args.out,
        inputs=inputs,
        count=args.count,
        seed=args.seed,
        source=args.source,
        shapes=shapes,
    )
    print(f"wrote {args.count} synthetic samples and manifest.toml to {out}")
    return 0
