"""Building a TensorRT engine from ONNX: ``orinbench build`` and the build step of ``bench``.

Precision takes one of two paths, chosen from the TensorRT version and recorded in the sidecar:

* **builder flags** (8.5, 8.6, 10.x by default): the ONNX model is parsed as it is and the
  builder may pick FP16 (``--precision fp16``) or INT8 kernels (``int8``: INT8, with an implicit
  calibrator made from ``--calib-data`` or one that only reads ``--calib-cache``; or explicit INT8
  when the model has Q/DQ nodes) per layer; ``best`` allows both.
* **strongly typed** (11.x always, 10.x with ``--strongly-typed``): TensorRT 11 removed the FP16
  and INT8 builder flags and implicit calibration, and runs every layer in the types the network
  says. ``fp16`` converts the ONNX model to FP16 first (inputs, outputs and numerically sensitive
  ops kept in FP32, ``orinbench.precision.fp16``); ``int8`` needs a Q/DQ model: the model itself
  when it has Q/DQ nodes, else one made from ``--calib-data`` (``orinbench.precision.qdq``).

INT8 from ``--calib-cache`` is checked twice (``cache_usage``): before the build, the cache against
the network's tensors and the TensorRT release (a cache of another network or release fails at
once, before the long build); after it, against the engine's layers (inspector) and the build log
("Missing scale and zero-point for tensor ..."). A cache TensorRT ignored or only partly applied is
a :class:`~orinbench.errors.CalibrationError` (exit 2) naming how many tensors matched, and no
engine or sidecar is written; the verdict of an applied cache is recorded in the sidecar
(``calibration.cache_usage``). These checks ran against the TensorRT test double
(``tests/trt_double``), which models TensorRT 8.5/8.6/10.x's handling of caches; no real TensorRT
was available where they were written.

Nothing is written unless the build succeeds; then the engine, the timing cache and the sidecar
are each written atomically, and the TensorRT log (also for a failed build) beside the engine.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from ... import __version__, _lazy
from ..._io import atomic_write_bytes, require_file, sha256_bytes, sha256_file
from ...errors import (
    BuildError,
    CalibrationError,
    DependencyMissingError,
    ShapeError,
    UsageError,
)
from ...model.load import load_model, model_sha256
from ...model.shapes import format_shape
from ...results.schema import TensorSpec
from . import compat
from .cuda import CudaApi, DeviceInfo, default_layer
from .engine import engine_io
from .inspector import layer_precision_summary
from .logger import LogRecord, make_logger
from .progress import Monitor, ProgressCallback
from .sidecar import (
    FORMAT,
    FORMAT_VERSION,
    folder_sha256,
    l4t_version,
    log_path,
    read_sidecar,
    sidecar_path,
    up_to_date,
    write_sidecar,
)

PRECISIONS = ("fp32", "fp16", "int8", "best")
#: TensorRT's builder optimization levels (default 3)
OPT_LEVELS = range(0, 6)
PATH_FLAGS = "builder-flags"
PATH_STRONG = "strongly-typed"
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class ShapeRange:
    """An optimization-profile range of one input."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def _dims(text: str, whole: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.lower().split("x")]
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(
            f"bad --shapes {whole!r}",
            why=f"{text!r} is not a shape like 1x3x224x224",
            fix="write NAME:MIN/OPT/MAX, e.g. images:1x6x3x256x704/2x6x3x256x704/4x6x3x256x704",
        )
    return tuple(int(p) for p in parts)


def parse_shapes(texts: Sequence[str]) -> dict[str, ShapeRange]:
    """Parse ``NAME:MIN/OPT/MAX`` (or ``NAME:SHAPE`` for a fixed shape), one input each."""
    out: dict[str, ShapeRange] = {}
    for text in texts:
        name, sep, rest = text.rpartition(":")
        if not sep or not name:
            raise UsageError(
                f"bad --shapes {text!r}",
                why="expected NAME:MIN/OPT/MAX",
                fix="e.g. --shapes images:1x3x224x224/4x3x224x224/8x3x224x224",
            )
        parts = rest.split("/")
        if len(parts) not in (1, 3):
            raise UsageError(
                f"bad --shapes {text!r}",
                why="give one shape (fixed) or three (min/opt/max)",
                fix=f"e.g. {name}:1x3x224x224/4x3x224x224/8x3x224x224",
            )
        dims = [_dims(p, text) for p in parts]
        lo, opt, hi = (dims[0], dims[0], dims[0]) if len(dims) == 1 else dims
        if not len(lo) == len(opt) == len(hi):
            raise UsageError(f"bad --shapes {text!r}", why="min, opt and max differ in rank")
        if not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise UsageError(
                f"bad --shapes {text!r}", why="every dimension needs min <= opt <= max"
            )
        if name in out:
            raise UsageError(f"--shapes names input {name!r} twice", fix="give it once")
        out[name] = ShapeRange(lo, opt, hi)
    return out


@dataclass(frozen=True)
class BuildOptions:
    """Every build setting. Paths are as the user gave them; the sidecar records them so."""

    precision: str = "fp32"
    workspace_mib: int | None = None
    timing_cache: Path | None = None
    shapes: Mapping[str, ShapeRange] = field(default_factory=dict)
    dla_core: int | None = None
    gpu_fallback: bool = False
    plugins: tuple[Path, ...] = ()
    opt_level: int | None = None
    sparsity: bool = False
    strongly_typed: bool = False
    calib_cache: Path | None = None
    calib_data: Path | None = None
    calib_batch: int = 1
    verbose_log: bool = False
    #: execution contexts that will run at once (``--streams N`` lanes, +1 for
    #: ``--profile-layers``): before TensorRT 9 a dynamic-shape engine gets that many identical
    #: optimization profiles, one per context (see :func:`profile_count`)
    contexts: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UsageError(
                f"unknown precision {self.precision!r}",
                fix=f"choose one of {', '.join(PRECISIONS)}",
            )
        if self.calib_cache is not None and self.calib_data is not None:
            raise UsageError(
                "--calib-cache and --calib-data are alternatives",
                fix="pass one: a cache to reuse, or data to calibrate with",
            )
        calibrated = self.calib_cache is not None or self.calib_data is not None
        if calibrated and self.precision not in ("int8", "best"):
            raise UsageError(
                f"--calib-cache/--calib-data have no use with --precision {self.precision}",
                fix="add --precision int8 (or best), or drop the calibration option",
            )
        if self.workspace_mib is not None and self.workspace_mib <= 0:
            raise UsageError("--workspace must be > 0 MiB", fix="e.g. --workspace 2048")
        if self.opt_level is not None and self.opt_level not in OPT_LEVELS:
            raise UsageError(
                f"--opt-level {self.opt_level} is out of range",
                fix="pass 0..5 (TensorRT's default is 3)",
            )
        if self.dla_core is not None and self.dla_core < 0:
            raise UsageError("--dla-core must be >= 0", fix="Orin has DLA cores 0 and 1")
        if self.gpu_fallback and self.dla_core is None:
            raise UsageError("--gpu-fallback only applies with --dla-core", fix="add --dla-core 0")
        if self.dla_core is not None and self.precision == "fp32":
            # The DLA runs FP16 and INT8 only: without --gpu-fallback TensorRT refuses every
            # layer, with it every layer runs on the GPU in FP32 and the "DLA" engine is a GPU
            # FP32 engine. trtexec turns FP16 on for --useDLACore instead; orinbench asks.
            raise UsageError(
                "--precision fp32 cannot run on the DLA (--dla-core)",
                why="the DLA runs FP16 and INT8 layers only",
                fix="pass --precision fp16 (or int8) with --dla-core, or drop --dla-core",
            )
        if self.calib_batch < 1:
            raise UsageError("--calib-batch must be >= 1", fix="e.g. --calib-batch 1")
        if self.contexts < 1:
            raise UsageError("--contexts must be >= 1", fix="e.g. --contexts 3 for --streams 2")

    def settings(self, plugin_hashes: Sequence[str], *, profiles: int = 1) -> dict[str, Any]:
        """The settings as stored in the sidecar (and compared for "up to date"). ``profiles``
        (the optimization profiles built, :func:`profile_count`) is recorded only when > 1, so
        that the sidecars of one-profile engines keep their keys."""
        extra = {"optimization_profiles": profiles} if profiles > 1 else {}
        return {
            **extra,
            "precision": self.precision,
            "strongly_typed": self.strongly_typed,
            "workspace_mib": self.workspace_mib,
            "shapes": {k: v.to_dict() for k, v in sorted(self.shapes.items())},
            "dla_core": self.dla_core,
            "gpu_fallback": self.gpu_fallback,
            "opt_level": self.opt_level,
            "sparsity": self.sparsity,
            "calib_batch": self.calib_batch if self.calib_data is not None else None,
            "plugins": [
                {"path": str(p), "sha256": h}
                for p, h in zip(self.plugins, plugin_hashes, strict=True)
            ],
        }


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_engine` did. ``skipped`` means the engine was already up to date."""

    engine_path: Path
    sidecar_path: Path
    log_path: Path | None
    skipped: bool
    reason: str
    sidecar: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


class OnnxParseError(BuildError):
    """TensorRT's ONNX parser rejected nodes; ``lines`` has one line per error (node, op, text)."""

    def __init__(self, what: str, *, lines: Sequence[str], why: str, fix: str) -> None:
        self.lines = tuple(lines)
        super().__init__(what, why=why, fix=fix)


WarningCallback = Callable[[str], None]


def default_engine_path(onnx_path: str | os.PathLike[str], precision: str) -> Path:
    """``engines/<model stem>.<precision>.engine`` in the current folder."""
    return Path("engines") / f"{Path(onnx_path).stem}.{precision}.engine"


def _has_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in _QDQ_OPS for n in model.graph.node)


def _io_specs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    from ...model.inspect import tensor_spec

    inits = {i.name for i in model.graph.initializer}
    return tuple(tensor_spec(vi) for vi in model.graph.input if vi.name not in inits)


def profile_count(feats: compat.Features, opts: BuildOptions, *, dynamic: bool) -> int:
    """How many identical optimization profiles to build: one per concurrent execution context
    (``opts.contexts``) where TensorRT needs that (before 9.0, an engine with dynamic inputs:
    "each execution context in concurrent use must use a separate optimization profile", 8.5/8.6
    NvInferRuntime.h), else one. ``dynamic``: the network has an input with dynamic dims.
    Verified against the test double and the headers only, never on a real TensorRT."""
    if feats.profile_per_context and dynamic and opts.shapes:
        return opts.contexts
    return 1


def _dyn(model: onnx.ModelProto) -> bool:
    return any(not s.is_static for s in _io_specs(model))


def _net_dynamic(network: Any) -> bool:
    """Whether the parsed network has an input with a dynamic (-1) dimension."""
    return any(
        int(d) < 0 for i in range(int(network.num_inputs)) for d in network.get_input(i).shape
    )


def _check_shapes(inputs: Sequence[TensorSpec], shapes: Mapping[str, ShapeRange]) -> None:
    by_name = {s.name: s for s in inputs}
    for name in shapes:
        if name not in by_name:
            raise ShapeError(
                f"--shapes names input {name!r}, which the model does not have",
                why=f"its inputs are {', '.join(repr(n) for n in by_name) or 'none'}",
                fix="use one of those names",
            )
    for spec in inputs:
        rng = shapes.get(spec.name)
        if rng is None:
            if not spec.is_static:
                example = "x".join(str(d) if isinstance(d, int) else "1" for d in spec.shape)
                raise ShapeError(
                    f"input {spec.name!r} has dynamic dimensions ({format_shape(spec.shape)}) and "
                    "no --shapes range",
                    why="TensorRT builds dynamic inputs for a min/opt/max range (an optimization "
                    "profile)",
                    fix=f"pass --shapes {spec.name}:{example}/{example}/{example} with the dynamic "
                    "dims set",
                )
            continue
        if len(rng.min) != len(spec.shape):
            raise ShapeError(
                f"--shapes for {spec.name!r} has rank {len(rng.min)}, the input has rank "
                f"{len(spec.shape)} ({format_shape(spec.shape)})",
                fix="give one number per dimension",
            )
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int) and d >= 0 and not rng.min[axis] == rng.max[axis] == d:
                raise ShapeError(
                    f"--shapes for {spec.name!r}: axis {axis} is fixed to {d} in the model",
                    fix=f"use {d} for min, opt and max of that axis",
                )


def _device(cuda: CudaApi | None) -> DeviceInfo | None:
    """GPU 0 for the sidecar; None where pycuda is not installed (then the GPU is not recorded)."""
    layer = cuda if cuda is not None else default_layer()
    try:
        return layer.device_info(0)
    except DependencyMissingError:
        return None
    except Exception:  # pycuda present but no usable GPU/driver: the build itself will say so
        return None


def _cuda_versions(cuda: CudaApi | None) -> dict[str, str]:
    layer = cuda if cuda is not None else default_layer()
    try:
        return layer.versions()
    except Exception:  # pycuda missing or unusable: versions are informative only
        return {}


def _make_cache_calibrator(
    trt: Any, cache: bytes, algorithm: str, findings: Sequence[str] = ()
) -> Any:
    """A calibrator that only hands TensorRT an existing cache (``--calib-cache``).

    ``findings`` (what :func:`orinbench.calib.cache.check_cache` found in the cache) become its
    ``warnings`` once TensorRT reads the cache, as a data calibrator's do."""
    bases = {
        "entropy2": "IInt8EntropyCalibrator2",
        "entropy": "IInt8EntropyCalibrator",
        "minmax": "IInt8MinMaxCalibrator",
    }
    if algorithm not in bases:
        raise CalibrationError(
            f"cannot reuse a calibration cache of the {algorithm!r} calibrator",
            fix="recalibrate with --calib-data (entropy2)",
        )
    if algorithm == "entropy2":
        base = trt.IInt8EntropyCalibrator2
    elif algorithm == "entropy":
        base = trt.IInt8EntropyCalibrator
    else:
        base = trt.IInt8MinMaxCalibrator

    class _CacheCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.warnings: list[str] = []
            self.cache = cache
            #: True once TensorRT asked for calibration data: it did not use the cache
            self.cache_not_used = False

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: Sequence[str]) -> None:
            # No data: TensorRT must take every scale from the cache. TensorRT asks for batches
            # only when it did not take the cache (it skips one it considers incompatible and
            # calibrates again): returning None then ends that calibration with no data and the
            # build fails, which _unused_cache_error turns into a CalibrationError.
            self.cache_not_used = True
            return None

        def read_calibration_cache(self) -> bytes:
            self.warnings = list(findings)
            return cache

        def write_calibration_cache(self, cache: Any) -> None:
            return None

    return _CacheCalibrator()


@dataclass
class _Plan:
    """Decisions made before TensorRT starts."""

    path: str
    build_model: Path
    calibration: dict[str, Any] | None
    transform: dict[str, Any] | None
    calibrator: Any = None
    cache_algorithm: str | None = None
    cache_bytes: bytes | None = None
    use_int8_flag: bool = False
    use_fp16_flag: bool = False
    #: where a data calibrator writes the cache it computes (kept beside the engine afterwards)
    calib_cache_out: Path | None = None
    #: input shapes of the data calibrator's batches when the model has dynamic inputs: the
    #: calibration profile (TensorRT otherwise calibrates at profile 0's opt shapes)
    calib_shapes: dict[str, tuple[int, ...]] | None = None
    #: the float activations TensorRT calibrates (set when a --calib-cache is checked)
    network_tensors: tuple[str, ...] = ()


def _decide_path(feats: compat.Features, options: BuildOptions) -> str:
    if feats.always_strongly_typed:
        return PATH_STRONG
    if options.strongly_typed:
        if not feats.strongly_typed_flag:
            raise UsageError(
                f"--strongly-typed needs TensorRT 10 or newer, this is {feats.version}",
                fix="drop --strongly-typed (8.x builds with builder precision flags)",
            )
        return PATH_STRONG
    return PATH_FLAGS


def _calibration_key(
    options: BuildOptions, model_has_qdq: bool, onnx_sha: str
) -> dict[str, Any] | None:
    if options.precision not in ("int8", "best"):
        return None
    if options.calib_cache is not None:
        p = require_file(options.calib_cache, what="calibration cache")
        return {"source": "cache", "path": str(options.calib_cache), "sha256": sha256_file(p)}
    if options.calib_data is not None:
        d = Path(options.calib_data)
        if not d.is_dir():
            # A FILE.py:function loader spec or a missing folder: hashed by its text only.
            if ":" not in str(d) and not d.exists():
                raise CalibrationError(
                    f"calibration data not found: {d}", fix="pass a folder of .npz samples"
                )
            return {"source": "data", "path": str(d), "sha256": sha256_bytes(str(d).encode())}
        return {"source": "data", "path": str(d), "sha256": folder_sha256(d)}
    if model_has_qdq:
        return {"source": "qdq-model", "sha256": onnx_sha}
    return None


def _no_calibration_error(precision: str) -> UsageError:
    return UsageError(
        f"--precision {precision} needs INT8 calibration, and none was given",
        why="the model has no Q/DQ nodes and neither --calib-cache nor --calib-data was passed",
        fix="pass --calib-data DIR (calibration samples) or --calib-cache FILE, or use a Q/DQ "
        "model from 'orinbench quantize'",
    )


def _precheck_cache(
    trt: Any, cache_path: Path, model: onnx.ModelProto, src: Path
) -> tuple[str, ...]:
    """The static cache check (names, scales, release) before anything is built; returns the
    network's tensors for the check after the build."""
    from ...calib.cache import network_activation_tensors, read_cache
    from .cache_usage import check_cache_usage, require_cache_applied

    tensors = tuple(network_activation_tensors(model))
    usage = check_cache_usage(
        read_cache(cache_path), network_tensors=tensors, trt_version=str(trt.__version__)
    )
    require_cache_applied(usage, cache_path=cache_path, model_path=src)
    return tensors


def _check_applied(
    trt: Any,
    plan: _Plan,
    built: Any,
    *,
    model: onnx.ModelProto,
    log_text: str,
    cache_path: Path | None,
    src: Path,
) -> dict[str, Any]:
    """After the build: did TensorRT apply the cache? Raises CalibrationError when not; returns
    the verdict for the sidecar."""
    from ...calib.cache import network_activation_tensors, parse_cache
    from .cache_usage import check_cache_usage, inspector_layers, require_cache_applied

    assert plan.cache_bytes is not None
    tensors = plan.network_tensors or tuple(network_activation_tensors(model))
    usage = check_cache_usage(
        parse_cache(plan.cache_bytes, source=str(cache_path or "the calibration cache")),
        network_tensors=tensors,
        trt_version=str(trt.__version__),
        layers=inspector_layers(trt, built) if built is not None else None,
        log_text=log_text,
    )
    require_cache_applied(usage, cache_path=cache_path, model_path=src)
    return {
        "verdict": usage.verdict,
        "matched": usage.matched,
        "expected": usage.expected,
        "int8_layers": usage.int8_layers,
        "layer_count": usage.layer_count,
        "notes": list(usage.notes),
    }


def build_engine(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str] | None = None,
    options: BuildOptions | None = None,
    *,
    force: bool = False,
    calibrator: Any = None,
    calibration_id: str | None = None,
    on_progress: ProgressCallback | None = None,
    on_warning: WarningCallback | None = None,
    cuda: CudaApi | None = None,
) -> BuildReport:
    """Build ``onnx_path`` into ``engine_path`` (default :func:`default_engine_path`).

    A build whose inputs match the existing sidecar is skipped unless ``force``. ``calibrator``
    is an already constructed ``trt.IInt8Calibrator`` (8.x/10.x builder-flags path); give
    ``calibration_id`` (e.g. a hash of its data) so that such builds can be found up to date.
    ``on_progress`` receives :class:`~.progress.BuildProgress`; ``on_warning`` each TensorRT
    warning as it happens. ``cuda`` replaces the pycuda layer (tests).
    """
    opts = options if options is not None else BuildOptions()
    src = require_file(onnx_path, what="ONNX model")
    model = load_model(src, load_external_data=False)
    engine_file = (
        Path(engine_path) if engine_path is not None else default_engine_path(src, opts.precision)
    )
    for lib in opts.plugins:
        require_file(lib, what="plugin library")
    has_qdq = _has_qdq(model)
    onnx_sha = model_sha256(src)
    _check_shapes(_io_specs(model), opts.shapes)

    trt = _lazy.tensorrt()
    feats = compat.features(trt)
    path = _decide_path(feats, opts)
    if opts.opt_level is not None and not feats.optimization_level:
        raise UsageError(
            f"--opt-level needs TensorRT 8.6 or newer, this is {feats.version}",
            fix="drop --opt-level",
        )
    calibration = _calibration_key(opts, has_qdq, onnx_sha)
    if calibrator is not None:
        calibration = {"source": "calibrator", "sha256": calibration_id}
    if opts.precision in ("int8", "best") and calibration is None:
        raise _no_calibration_error(opts.precision)
    if path == PATH_FLAGS and has_qdq and opts.precision in ("fp32", "fp16"):
        raise UsageError(
            f"{src} has Q/DQ nodes, which TensorRT {feats.version} builds only with INT8 enabled",
            fix="build it with --precision int8 (or best), or pass the model without Q/DQ",
        )
    if path == PATH_STRONG:
        if opts.precision == "best":
            raise UsageError(
                "--precision best has no meaning for a strongly typed build",
                why="TensorRT 11 (and --strongly-typed) runs each layer in the type the network "
                "says; it picks no precisions itself",
                fix="use --precision fp16, or int8 with a Q/DQ model or --calib-data",
            )
        if (
            opts.precision == "int8"
            and calibration
            and calibration["source"] in ("cache", "calibrator")
        ):
            raise UsageError(
                "a calibration cache cannot be used for a strongly typed INT8 build",
                why=f"TensorRT {feats.version} "
                f"{'has no' if feats.always_strongly_typed else 'uses no'} implicit INT8 "
                "calibration on this path: INT8 comes from Q/DQ nodes",
                fix="pass --calib-data DIR (a Q/DQ model is made from it) or a Q/DQ model",
            )
    network_tensors: tuple[str, ...] = ()
    if opts.calib_cache is not None and calibrator is None:
        network_tensors = _precheck_cache(trt, opts.calib_cache, model, src)

    device = _device(cuda)
    plugin_hashes = [sha256_file(p) for p in opts.plugins]
    settings = opts.settings(
        plugin_hashes, profiles=profile_count(feats, opts, dynamic=_dyn(model))
    )
    key = {
        "onnx_sha256": onnx_sha,
        "settings": settings,
        "calibration": (calibration or {}).get("sha256"),
        "tensorrt": str(trt.__version__),
        "gpu": [device.name, device.cc_text] if device is not None else None,
    }
    reason = "forced" if force else "a calibrator object was given"
    if not force and (calibrator is None or calibration_id is not None):
        fresh, reason = up_to_date(engine_file, key)
        if fresh:
            return BuildReport(
                engine_path=engine_file,
                sidecar_path=sidecar_path(engine_file),
                log_path=None,
                skipped=True,
                reason="up to date",
                sidecar=read_sidecar(engine_file) or {},
            )

    compat.load_plugin_libraries(opts.plugins)
    with tempfile.TemporaryDirectory(prefix="orinbench-build-") as tmp:
        plan = _prepare(trt, feats, opts, path, src, model, has_qdq, calibration, Path(tmp), cuda)
        if calibrator is not None:
            plan.calibrator = calibrator
            plan.use_int8_flag = True
            plan.cache_bytes = None  # the given calibrator, not --calib-cache, feeds TensorRT
        plan.network_tensors = network_tensors
        return _run_build(
            trt,
            feats,
            opts,
            plan,
            model=model,
            src=src,
            onnx_sha=onnx_sha,
            engine_file=engine_file,
            settings=settings,
            device=device,
            cuda=cuda,
            on_progress=on_progress,
            on_warning=on_warning,
            reason=reason,
        )


def _prepare(
    trt: Any,
    feats: compat.Features,
    opts: BuildOptions,
    path: str,
    src: Path,
    model: onnx.ModelProto,
    has_qdq: bool,
    calibration: dict[str, Any] | None,
    tmp: Path,
    cuda: CudaApi | None,
) -> _Plan:
    """Precision transforms (strongly typed) or flags and calibrator (builder flags)."""
    plan = _Plan(path=path, build_model=src, calibration=calibration, transform=None)
    if path == PATH_STRONG:
        if opts.precision == "fp16":
            from ...precision.fp16 import convert_to_fp16

            out = convert_to_fp16(src, tmp / "model.fp16.onnx", keep_io_fp32=True)
            plan.build_model = Path(out)
            plan.transform = {"kind": "fp16", "onnx_sha256": sha256_file(out), "keep_io_fp32": True}
        elif opts.precision == "int8" and not has_qdq:
            from ...precision.qdq import quantize_qdq

            assert opts.calib_data is not None  # checked by the caller
            out = quantize_qdq(src, data=opts.calib_data, out_path=tmp / "model.qdq.onnx")
            plan.build_model = Path(out)
            plan.transform = {"kind": "qdq", "onnx_sha256": sha256_file(out)}
        return plan
    # builder-flags path
    if opts.precision in ("fp16", "best"):
        plan.use_fp16_flag = True
    if opts.precision in ("int8", "best"):
        plan.use_int8_flag = True
        if opts.calib_cache is not None:
            from ...calib.cache import check_cache, read_cache

            cache = read_cache(opts.calib_cache)
            plan.cache_algorithm = cache.calibrator
            plan.cache_bytes = Path(opts.calib_cache).read_bytes()
            findings = check_cache(
                cache, trt_version=str(trt.__version__), source=str(opts.calib_cache)
            )
            plan.calibrator = _make_cache_calibrator(
                trt, plan.cache_bytes, cache.calibrator, findings
            )
        elif opts.calib_data is not None:
            plan.calib_cache_out = tmp / "calibration.cache"
            plan.calibrator, plan.calib_shapes = _data_calibrator(
                trt, opts, model, plan.calib_cache_out, cuda
            )
    return plan


def _data_calibrator(
    trt: Any, opts: BuildOptions, model: onnx.ModelProto, cache_path: Path, cuda: CudaApi | None
) -> tuple[Any, dict[str, tuple[int, ...]] | None]:
    """An implicit-INT8 calibrator over ``--calib-data`` (orinbench.calib.trt_calibrator), and
    the shapes of its batches when the model has dynamic inputs (None otherwise)."""
    from ...calib.dataset import open_dataset

    try:
        from ...calib.trt_calibrator import make_calibrator
    except ImportError as exc:  # pragma: no cover - the calibration package ships it
        raise BuildError(
            "calibration while building is not available in this orinbench",
            why=str(exc),
            fix="calibrate with 'orinbench calibrate' and pass --calib-cache",
        ) from exc
    assert opts.calib_data is not None
    inputs = _io_specs(model)
    dataset = open_dataset(opts.calib_data, inputs=inputs)
    calibrator = make_calibrator(
        trt,
        dataset=dataset,
        cache_path=cache_path,
        algo="entropy2",
        batch=opts.calib_batch,
        cuda=cuda if cuda is not None else default_layer(),
    )
    if all(spec.is_static for spec in inputs):
        return calibrator, None
    from ...calib.trt_calibrator import batches

    # The first batch gives the shapes every batch has (the calibrator concatenates samples of
    # one shape); make_calibrator has refused a data set without a full batch.
    first = next(batches(dataset, opts.calib_batch))
    shapes = {s.name: tuple(int(d) for d in first[s.name].shape) for s in inputs}
    return calibrator, shapes


def _configure(
    trt: Any, feats: compat.Features, opts: BuildOptions, plan: _Plan, builder: Any, network: Any
) -> Any:
    config = builder.create_builder_config()
    if opts.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mib) << 20)
    if plan.use_fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.use_int8_flag:
        config.set_flag(trt.BuilderFlag.INT8)
        if plan.calibrator is not None:
            config.int8_calibrator = plan.calibrator
    if opts.sparsity:
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    if opts.dla_core is not None:
        cores = int(builder.num_DLA_cores)
        if opts.dla_core >= cores:
            raise UsageError(
                f"--dla-core {opts.dla_core} does not exist",
                why=f"this device has {cores} DLA core(s)",
                fix="use --dla-core 0 or 1 on Orin AGX/NX" if cores else "drop --dla-core",
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        _configure_dla(trt, feats, opts, plan, config)
    if opts.opt_level is not None:
        config.builder_optimization_level = int(opts.opt_level)
    # DETAILED lets the engine inspector report each layer's precision (the runner lowers the
    # NVTX verbosity again, so timing is not affected).
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    # identical profiles, one per concurrent execution context where TensorRT < 9 needs that
    # (the runner gives lane i profile i; see profile_count)
    for _ in range(profile_count(feats, opts, dynamic=_net_dynamic(network)) if opts.shapes else 0):
        trt_profile = builder.create_optimization_profile()
        for name, rng in opts.shapes.items():
            trt_profile.set_shape(name, rng.min, rng.opt, rng.max)
        config.add_optimization_profile(trt_profile)
    if plan.calib_shapes and plan.calibrator is not None:
        # Without a calibration profile TensorRT calibrates a dynamic network at the opt shapes
        # of profile 0 and reads batches of that size from the calibrator's buffers: a batch-1
        # calibration set would be read out of bounds for an engine optimized for batch 4.
        trt_profile = builder.create_optimization_profile()
        for name, shape in plan.calib_shapes.items():
            trt_profile.set_shape(name, shape, shape, shape)
        if not config.set_calibration_profile(trt_profile):
            raise CalibrationError(
                "TensorRT refused the calibration profile "
                + ", ".join(f"{n}:{format_shape(s)}" for n, s in plan.calib_shapes.items()),
                why="the calibration samples' shapes do not suit the model's inputs",
                fix="give every calibration sample the same shape, one the model accepts",
            )
    return config


def _configure_dla(
    trt: Any, feats: compat.Features, opts: BuildOptions, plan: _Plan, config: Any
) -> None:
    """The flags of a DLA build, as trtexec sets them for --useDLACore (sampleEngines.cpp,
    8.5.3-10.x): PREFER_PRECISION_CONSTRAINTS; GPU_FALLBACK when asked, else DIRECT_IO
    ("Reformatting runs on GPU, so avoid I/O reformatting"; deprecated in 10.7, so only set
    before it); FP16 unless INT8 is on. A strongly typed network takes no precision flags (its
    types are the network's), so there only the fallback flags are set. Verified against the
    TensorRT double and trtexec's source only, never on a real DLA."""
    if opts.gpu_fallback:
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    elif not feats.version.at_least("10.7"):
        config.set_flag(trt.BuilderFlag.DIRECT_IO)
    if plan.path == PATH_STRONG:
        return
    config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    if not plan.use_int8_flag and not plan.use_fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)


def _timing_cache(trt: Any, config: Any, path: Path | None, warn: Callable[[str], None]) -> Any:
    """Attach the timing cache at ``path`` (created empty if missing); returns it or None."""
    if path is None:
        return None
    data = b""
    if path.exists():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BuildError(f"cannot read the timing cache {path}", why=str(exc)) from exc
    timing = config.create_timing_cache(data)
    if timing is None or not config.set_timing_cache(timing, False):
        warn(f"the timing cache {path} is from another GPU or TensorRT version; starting a new one")
        timing = config.create_timing_cache(b"")
        config.set_timing_cache(timing, False)
    return timing


def _run_build(
    trt: Any,
    feats: compat.Features,
    opts: BuildOptions,
    plan: _Plan,
    *,
    model: onnx.ModelProto,
    src: Path,
    onnx_sha: str,
    engine_file: Path,
    settings: Mapping[str, Any],
    device: DeviceInfo | None,
    cuda: CudaApi | None,
    on_progress: ProgressCallback | None,
    on_warning: WarningCallback | None,
    reason: str,
) -> BuildReport:
    warnings: list[str] = []

    def warn(text: str) -> None:
        warnings.append(text)
        if on_warning is not None:
            on_warning(text)

    def on_message(rec: LogRecord) -> None:
        if rec.severity == "WARNING":
            warn(f"TensorRT: {rec.message}")

    log = make_logger(
        trt, min_severity="VERBOSE" if opts.verbose_log else "INFO", on_message=on_message
    )
    header = (
        f"# orinbench {__version__} build of {src} -> {engine_file}\n"
        f"# TensorRT {trt.__version__}, precision {opts.precision} ({plan.path})"
    )
    log_file = log_path(engine_file)
    started = time.perf_counter()
    try:
        trt.init_libnvinfer_plugins(log.ilogger, "")
        builder = trt.Builder(log.ilogger)
        network = builder.create_network(
            compat.network_flags(trt, feats, strongly_typed=plan.path == PATH_STRONG)
        )
        parser = trt.OnnxParser(network, log.ilogger)
        if not parser.parse_from_file(str(plan.build_model)):
            nodes = load_model(plan.build_model, load_external_data=False).graph.node
            issues = compat.parser_issues(parser, feats, nodes)
            lines = [i.line() for i in issues] or log.errors() or ["(no error details)"]
            unsupported = sorted({i.op_type for i in issues if i.op_type})
            raise OnnxParseError(
                f"TensorRT {trt.__version__} cannot parse {src}: "
                f"{len(lines)} error(s), listed above",
                lines=lines,
                why=f"ops involved: {', '.join(unsupported)}" if unsupported else "see the log",
                fix="load the plugin libraries for custom ops with --plugins, or replace the "
                f"unsupported ops; the full log is {log_file}",
            )
        config = _configure(trt, feats, opts, plan, builder, network)
        timing = _timing_cache(trt, config, opts.timing_cache, warn)
        monitor = Monitor(trt, with_monitor=feats.progress_monitor, on_progress=on_progress)
        if monitor.monitor is not None:
            config.progress_monitor = monitor.monitor
        layer = (cuda if cuda is not None else default_layer()) if plan.calib_cache_out else None
        if layer is not None:
            layer.open(0)  # the data calibrator copies batches to the GPU during the build
        try:
            with monitor:
                serialized = builder.build_serialized_network(network, config)
        finally:
            if layer is not None:
                _close_calibrator(plan.calibrator)
                layer.close()
        monitor.raise_if_cancelled()
        for text in _calibrator_warnings(plan.calibrator):
            warn(text)
        unused = _unused_cache_error(
            trt, plan.calibrator, model=model, cache_path=opts.calib_cache, src=src
        )
        if unused is not None:
            raise unused
        calib_error = getattr(plan.calibrator, "error", None)
        if isinstance(calib_error, BaseException):
            raise calib_error
        if serialized is None:
            errors = log.errors()
            fix = f"read the log {log_file}"
            if opts.dla_core is not None and not opts.gpu_fallback:
                fix += "; layers the DLA cannot run need --gpu-fallback"
            raise BuildError(
                f"TensorRT {trt.__version__} could not build {src}",
                why=errors[-1] if errors else "the builder returned no engine",
                fix=fix,
            )
        data = bytes(memoryview(serialized))
        seconds = time.perf_counter() - started
        layers = None
        inputs: tuple[TensorSpec, ...] = ()
        outputs: tuple[TensorSpec, ...] = ()
        runtime = trt.Runtime(log.ilogger)
        if opts.dla_core is not None:
            runtime.DLA_core = int(opts.dla_core)
        built = runtime.deserialize_cuda_engine(data)
        if built is not None:
            layers = layer_precision_summary(trt, built)
            inputs, outputs = engine_io(trt, built)
        else:
            warn("the new engine could not be loaded for inspection; see the log")
        dla = None
        if opts.dla_core is not None:
            dla = dla_placement(
                trt,
                built,
                log_text="\n".join(r.message for r in log.records),
                network_layers=int(network.num_layers),
                core=int(opts.dla_core),
                gpu_fallback=opts.gpu_fallback,
            )
            if dla["fallback_layers"] or dla["mostly_gpu"]:
                warn(dla_summary(dla))
        calibration = dict(plan.calibration) if plan.calibration else None
        if plan.cache_bytes is not None:
            # before anything is written: an engine built on a cache TensorRT ignored must not
            # exist (nor a sidecar that would make it "up to date" next time)
            usage = _check_applied(
                trt,
                plan,
                built,
                model=model,
                log_text="\n".join(r.message for r in log.records),
                cache_path=opts.calib_cache,
                src=src,
            )
            if calibration is not None:
                calibration["cache_usage"] = usage
        produced_cache = _produced_cache(plan, engine_file)
        if calibration is not None and produced_cache is not None:
            calibration["cache_written"] = str(produced_cache[0])
            calibration["cache_sha256"] = produced_cache[1]
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine": {
                "file": engine_file.name,
                "sha256": sha256_bytes(data),
                "size_bytes": len(data),
            },
            "onnx": {"path": str(src), "sha256": onnx_sha},
            "settings": dict(settings),
            "precision_path": plan.path,
            "transform": plan.transform,
            "calibration": calibration,
            "versions": {
                "tensorrt": str(trt.__version__),
                **_cuda_versions(cuda),
                "l4t": l4t_version(),
                "orinbench": __version__,
            },
            "gpu": device.to_dict() if device is not None else None,
            "build": {
                "seconds": round(seconds, 3),
                "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "host": socket.gethostname(),
                "log": log_file.name,
            },
            "io": {
                "inputs": [s.to_dict() for s in inputs],
                "outputs": [s.to_dict() for s in outputs],
            },
            "layers": layers,
            "dla": dla,
            "warnings": len(warnings),
        }
        atomic_write_bytes(engine_file, data)
        if produced_cache is not None:
            atomic_write_bytes(produced_cache[0], produced_cache[2])
        if timing is not None and opts.timing_cache is not None:
            atomic_write_bytes(
                opts.timing_cache, bytes(memoryview(config.get_timing_cache().serialize()))
            )
        write_sidecar(engine_file, sidecar)
        return BuildReport(
            engine_path=engine_file,
            sidecar_path=sidecar_path(engine_file),
            log_path=log_file,
            skipped=False,
            reason=f"built ({reason})",
            sidecar=sidecar,
            warnings=tuple(warnings),
        )
    finally:
        log.write(log_file, header=header)


def dla_placement(
    trt: Any,
    built: Any,
    *,
    log_text: str,
    network_layers: int,
    core: int,
    gpu_fallback: bool,
) -> dict[str, Any]:
    """Where a DLA build's layers ended up, for the sidecar's ``dla`` entry.

    ``fallback_layers`` counts the network layers TensorRT moved to the GPU, from the build log
    ("Layer 'X' (TYPE): Unsupported on DLA. Switching this layer's device type to GPU." and
    "Default DLA is enabled but layer X is not supported on DLA, falling back to GPU."), out of
    ``network_layers`` (the TensorRT network's layers, which are what those lines name).
    ``engine_layers`` counts the built engine's layers per device from the inspector (a DLA
    subgraph is one ``{ForeignNode[...]}`` layer there). ``mostly_gpu`` is true when more than
    half of the network layers fell back, or when the inspector shows no DLA layer at all: such
    an engine's timings are GPU figures and must not be read as DLA ones. Verified only against
    the TensorRT double and upstream log wording, never on a real DLA.
    """
    from .cache_usage import analyze_layers, inspector_layers, parse_builder_log

    fallback = parse_builder_log(log_text).dla_fallback
    layers = inspector_layers(trt, built) if built is not None else None
    engine_layers = None
    if layers:
        engine_layers = dict(analyze_layers(layers, dla_engine=True).device)
    on_dla = engine_layers.get("DLA", 0) if engine_layers is not None else None
    mostly_gpu = (network_layers > 0 and 2 * len(fallback) > network_layers) or on_dla == 0
    return {
        "core": core,
        "gpu_fallback": gpu_fallback,
        "network_layers": network_layers,
        "fallback_layers": len(fallback),
        "fallback_examples": list(fallback[:10]),
        "engine_layers": engine_layers,
        "mostly_gpu": bool(mostly_gpu),
        "source": "build log (layers switched to the GPU) and engine inspector (devices)",
    }


def dla_summary(dla: Mapping[str, Any]) -> str:
    """One line for the build output: how many layers of a DLA build fell back to the GPU."""
    n, total = dla.get("fallback_layers", 0), dla.get("network_layers", 0)
    text = f"DLA core {dla.get('core')}: {n} of {total} network layers fell back to the GPU"
    examples = list(dla.get("fallback_examples") or [])
    if examples:
        text += f" (e.g. {', '.join(examples[:3])})"
    devices = dla.get("engine_layers")
    if devices:
        text += "; engine layers " + ", ".join(f"{k} {v}" for k, v in sorted(devices.items()))
    if dla.get("mostly_gpu"):
        text += "; most of this engine runs on the GPU, so its timings are not DLA figures"
    return text


def _unused_cache_error(
    trt: Any, calibrator: Any, *, model: onnx.ModelProto, cache_path: Path | None, src: Path
) -> CalibrationError | None:
    """The error for a cache-only calibrator that TensorRT asked for data: TensorRT did not use
    the cache. It names how many network tensors the cache matches by name, and the release that
    wrote it when that differs from this one (the likely reason). None when the cache was used.

    The real wording of TensorRT's failure after zero batches was not found in a public log
    ("Calibration failure occurred with no scaling factors detected" is the double's); this
    check relies on the get_batch call alone, which the calibrator contract guarantees (pyInt8.cpp).
    """
    if calibrator is None or not getattr(calibrator, "cache_not_used", False):
        return None
    from ...calib.cache import network_activation_tensors, parse_cache, same_release
    from .cache_usage import match_cache

    what = f"the calibration cache {cache_path}" if cache_path else "the calibration cache"
    try:
        cache = parse_cache(bytes(calibrator.cache), source=what)
    except CalibrationError:
        cache = None
    why = "TensorRT skips a cache it considers incompatible and asks for calibration data instead"
    matched = ""
    if cache is not None:
        match = match_cache(cache, network_activation_tensors(model))
        matched = (
            f" ({len(match.matched)} of {len(match.network_tensors)} network tensors match it by "
            "name)"
        )
        own, this = cache.trt_version, str(trt.__version__)
        if own is not None and not same_release(own, this):
            why = f"it was written by TensorRT {own} and this is TensorRT {this}; " + why
    model_name = str(src)
    return CalibrationError(
        f"TensorRT {trt.__version__} did not use {what}{matched}: it asked for calibration data, "
        "and a cache-only build has none",
        why=why,
        fix=f"calibrate again with this TensorRT (orinbench calibrate {model_name} --data DIR, or "
        "build with --calib-data DIR)",
    )


def _calibrator_warnings(calibrator: Any) -> list[str]:
    """What the calibrator found while TensorRT used it (``calibrator.warnings``: e.g. a reused
    cache written by another TensorRT release); calibrators without the attribute have none."""
    found = getattr(calibrator, "warnings", None) if calibrator is not None else None
    return [str(w) for w in found] if isinstance(found, (list, tuple)) else []


def _close_calibrator(calibrator: Any) -> None:
    close = getattr(calibrator, "close", None)
    if callable(close):
        close()


def _produced_cache(plan: _Plan, engine_file: Path) -> tuple[Path, str, bytes] | None:
    """The calibration cache a data calibrator wrote during the build, to keep beside the engine."""
    if plan.calib_cache_out is None or not plan.calib_cache_out.is_file():
        return None
    data = plan.calib_cache_out.read_bytes()
    return engine_file.with_name(engine_file.name + ".calib"), sha256_bytes(data), data
