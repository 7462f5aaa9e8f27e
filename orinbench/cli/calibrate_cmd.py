"""``orinbench calibrate MODEL.onnx --data DIR --out calib/NAME.cache``: TensorRT INT8 calibration.

Also holds the calibration-data arguments that ``quantize``, ``accuracy``, ``sensitivity`` and
``calib validate`` share: ``--data DIR`` or ``--data-loader-script FILE.py:function``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..calib.trt_calibrator import CALIBRATOR_CLASSES
from ..errors import UsageError
from ._common import parse_shapes
from ._outputs import check_outputs
from ._progress import Progress

if TYPE_CHECKING:
    from ..calib.dataset import CalibrationDataset


def add_data_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("calibration data (docs/calibration.md)")
    src = g.add_mutually_exclusive_group(required=required)
    src.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of .npz samples (keys = input names) with an optional manifest.toml",
    )
    src.add_argument(
        "--data-loader-script",
        default=None,
        metavar="FILE.py:function",
        help="a function that yields dicts of arrays (e.g. nuScenes read on the fly)",
    )
    g.add_argument(
        "--max-samples", type=int, default=None, metavar="N", help="use at most the first N samples"
    )


def data_source(args: argparse.Namespace) -> str | Path:
    """The ``data`` argument of the core functions: a folder or a FILE.py:function spec."""
    if args.data_loader_script is not None:
        spec = str(args.data_loader_script)
        if ".py:" not in spec:
            raise UsageError(
                f"--data-loader-script '{spec}' is not FILE.py:function",
                fix="pass e.g. --data-loader-script tools/calib.py:samples",
            )
        return spec
    return Path(args.data)


def shaped_data(
    args: argparse.Namespace, model: Path, *, one_shape: bool = True
) -> str | Path | CalibrationDataset:
    """:func:`data_source`, opened and validated against ``model``'s inputs with ``--shape``
    applied when it is given (every sample must then have exactly those sizes)."""
    source = data_source(args)
    shapes = parse_shapes(getattr(args, "shape", None))
    if not shapes:
        return source
    from ..calib.dataset import open_dataset
    from ..calib.specs import model_io_specs
    from ..model.shapes import with_shapes

    inputs, _ = model_io_specs(model)
    return open_dataset(
        source,
        inputs=with_shapes(inputs, shapes),
        max_samples=args.max_samples,
        one_shape=one_shape,
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="TensorRT INT8 calibration: write a calibration cache (needs TensorRT < 11)",
        description="Run TensorRT's implicit INT8 calibration (IInt8EntropyCalibrator2 or "
        "IInt8MinMaxCalibrator, fed through pycuda) on a calibration dataset and write the cache "
        "atomically. 'orinbench build --calib-data' reuses it. TensorRT 11 has no implicit "
        "calibration: use 'orinbench quantize' there.",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx")
    add_data_args(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="CACHE",
        help="calibration cache to write, e.g. calib/sample_bev.cache",
    )
    p.add_argument(
        "--algo",
        choices=tuple(CALIBRATOR_CLASSES),
        default="entropy2",
        help="calibrator (default entropy2)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="samples per calibration batch (models with a dynamic first dim; default 1)",
    )
    p.add_argument("--device", type=int, default=0, help="CUDA device (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..calib.calibrate import calibrate

    check_outputs(args, ("out",))
    progress = Progress("calibrate", enabled=not args.json)
    try:
        result = calibrate(
            args.model,
            data=data_source(args),
            out=args.out,
            algo=args.algo,
            batch=args.batch,
            max_samples=args.max_samples,
            device=args.device,
            on_log=lambda line: print(line, file=sys.stderr),
            on_progress=lambda done, frac: progress.step(frac, f"{done} batches"),
        )
    finally:
        progress.close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(
        f"calibrated {result.sample_count} samples in {result.batches} batches with TensorRT "
        f"{result.trt_version} ({result.algo}) in {result.seconds:.1f} s"
    )
    print(f"cache     {result.cache_path} ({result.tensor_count} tensors)")
    return 0
