"""``orinbench calibrate``: TensorRT's implicit INT8 calibration, run to produce a cache.

TensorRT calibrates while it builds an INT8 engine: it asks the calibrator for batches, runs the
network in FP32 on them, picks a scale per tensor and hands the cache to the calibrator. Here the
network is parsed from the ONNX file, built once with the calibrator, and the engine is thrown
away; what remains is the cache, written atomically by the calibrator. Later builds
(``orinbench build --calib-data``) read it and skip calibration.

TensorRT 11 has no implicit calibration: there this stops at once with a message that points to
``orinbench quantize`` (explicit Q/DQ INT8).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _lazy
from ..errors import BuildError, CalibrationError, UsageError
from ..model.load import load_model
from .cache import check_cache, network_activation_tensors, read_cache
from .dataset import CalibrationDataset, open_dataset
from .specs import io_specs, shape_text
from .trt_calibrator import (
    CALIBRATOR_CLASSES,
    batches,
    make_calibrator,
    require_implicit_calibration,
)


@dataclass(frozen=True)
class CalibrationRun:
    """What one ``calibrate`` produced."""

    cache_path: Path
    algo: str
    trt_version: str
    sample_count: int
    batches: int
    tensor_count: int
    seconds: float
    validate_s: float
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache": str(self.cache_path),
            "algo": self.algo,
            "trt_version": self.trt_version,
            "sample_count": self.sample_count,
            "batches": self.batches,
            "tensor_count": self.tensor_count,
            "seconds": self.seconds,
            "validate_s": self.validate_s,
            "warnings": list(self.warnings),
        }


def _check_batch(inputs: Any, batch: int) -> None:
    if batch == 1:
        return
    # a rank-0 input has no first dimension to batch along, like a static one
    static = [s for s in inputs if not s.shape or (isinstance(s.shape[0], int) and s.shape[0] >= 0)]
    if static:
        s = static[0]
        raise UsageError(
            f"--batch {batch} needs inputs with a dynamic first dimension",
            why=f"input '{s.name}' is {shape_text(s.shape)}",
            fix="use --batch 1 (each sample is then one calibration batch)",
        )


def calibrate(
    model_path: str | os.PathLike[str],
    *,
    data: CalibrationDataset | str | os.PathLike[str],
    out: str | os.PathLike[str],
    algo: str = "entropy2",
    batch: int = 1,
    max_samples: int | None = None,
    device: int = 0,
    trt: Any = None,
    cuda: Any = None,
    on_log: Callable[[str], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> CalibrationRun:
    """Calibrate ``model_path`` with TensorRT on ``data`` and write the cache to ``out``.

    ``trt`` and ``cuda`` default to the installed TensorRT and the backend's pycuda layer (tests
    pass the TensorRT test double and a fake CUDA layer). Calibration runs even when ``out``
    exists (the old cache is replaced atomically at the end, or left as it was on failure).
    """
    if algo not in CALIBRATOR_CLASSES:
        raise UsageError(
            f"unknown --algo '{algo}'", fix=f"use one of {', '.join(CALIBRATOR_CLASSES)}"
        )
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, not {batch}", fix="pass --batch 1")
    trt = trt if trt is not None else _lazy.tensorrt()
    require_implicit_calibration(trt)
    from ..backends.tensorrt.compat import features, network_flags, parser_issues
    from ..backends.tensorrt.cuda import default_layer
    from ..backends.tensorrt.logger import TrtLog

    feats = features(trt)
    src = Path(model_path)
    model = load_model(src)
    inputs, _ = io_specs(model)
    _check_batch(inputs, batch)
    t0 = time.perf_counter()
    dataset = open_dataset(data, inputs=inputs, max_samples=max_samples)
    validate_s = time.perf_counter() - t0 if not isinstance(data, CalibrationDataset) else 0.0
    first = next(batches(dataset, batch), None)
    if first is None:
        raise CalibrationError(
            f"--batch {batch} leaves no full batch of {dataset.count} samples", fix="lower --batch"
        )

    log = TrtLog(
        trt, min_severity="WARNING", on_message=(lambda r: on_log(r.line())) if on_log else None
    )
    layer = cuda if cuda is not None else default_layer()
    started = time.perf_counter()
    layer.open(device)
    calibrator = None
    try:
        builder = trt.Builder(log.ilogger)
        network = builder.create_network(network_flags(trt, feats, strongly_typed=False))
        parser = trt.OnnxParser(network, log.ilogger)
        if not parser.parse_from_file(str(src)):
            issues = parser_issues(parser, feats, list(model.graph.node))
            raise BuildError(
                f"TensorRT cannot parse {src}",
                why=issues[0].line() if issues else "; ".join(log.errors()[:1]) or None,
                fix="check the model with 'orinbench inspect'; unsupported ops need plugins",
            )
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_calibrator(
            trt,
            dataset=dataset,
            cache_path=out,
            algo=algo,
            batch=batch,
            cuda=layer,
            read_existing=False,
            on_progress=on_progress,
        )
        config.int8_calibrator = calibrator
        if any(not s.is_static for s in inputs):
            profile = builder.create_optimization_profile()
            for name, arr in first.items():
                profile.set_shape(name, arr.shape, arr.shape, arr.shape)
            config.add_optimization_profile(profile)
            # set_calibration_profile returns False when TensorRT refuses the profile
            # (pyCoreDoc.h: "True if the calibration profile was set correctly"); going on would
            # calibrate at other shapes and fail later with a vaguer message
            if not config.set_calibration_profile(profile):
                raise CalibrationError(
                    "TensorRT refused the calibration profile "
                    + ", ".join(f"{n}:{shape_text(tuple(a.shape))}" for n, a in first.items()),
                    why="the calibration samples' shapes do not suit the model's inputs",
                    fix="give every calibration sample the same shape, one the model accepts",
                )
        engine = builder.build_serialized_network(network, config)
        if calibrator.error is not None:
            err = calibrator.error
            if isinstance(err, CalibrationError):
                raise err
            raise CalibrationError(
                "calibration failed inside TensorRT's calibrator callback",
                why=f"{type(err).__name__}: {err}",
            ) from err
        if not calibrator.cache_written:
            errors = log.errors()
            raise CalibrationError(
                "TensorRT finished without writing a calibration cache",
                why=errors[0] if errors else ("the build failed" if engine is None else None),
                fix="see the TensorRT messages above; check that the model builds in FP32",
            )
        served = calibrator.batches_served
    finally:
        if calibrator is not None:
            calibrator.close()
        layer.close()
    seconds = time.perf_counter() - started
    cache = read_cache(out)
    warnings = check_cache(
        cache,
        trt_version=str(trt.__version__),
        network_tensors=network_activation_tensors(model),
        source=str(out),
    )
    return CalibrationRun(
        cache_path=Path(out),
        algo=algo,
        trt_version=str(trt.__version__),
        sample_count=served * batch,
        batches=served,
        tensor_count=len(cache.scales),
        seconds=seconds,
        validate_s=validate_s,
        warnings=tuple(warnings),
    )
