"""Explicit INT8: a Q/DQ ONNX model made with ONNX Runtime's static quantization, off the device.

TensorRT 10 deprecates implicit calibration and TensorRT 11 removes it; the replacement is an ONNX
model with QuantizeLinear/DequantizeLinear pairs that TensorRT builds as explicit INT8. This module
makes one with ``onnxruntime.quantization.quantize_static`` on the CPU, in the form TensorRT wants:

* QDQ format; activations and weights INT8 and *symmetric* (zero point 0: TensorRT supports no
  other), weights per output channel (``Conv`` axis 0, ``ConvTranspose`` axis 1), stored as float
  with a Q/DQ pair (``AddQDQPairToWeight``), bias left in float (TensorRT fuses it in the layer);
* Q/DQ on the *inputs* of the compute-heavy ops only (``Conv``, ``ConvTranspose``, ``MatMul``,
  ``Gemm`` by default) and not on their outputs, following TensorRT's Q/DQ placement advice: it
  fuses bias, activation and the next layer's quantize itself;
* calibration by entropy (KL divergence on |x| histograms, TensorRT's method; see
  :func:`calibrate_ranges`), a percentile of |x|, or min/max;
* ONNX Runtime's recommended pre-processing first (``quant_pre_process``: basic graph
  optimisation, which folds BatchNorm into Conv before the weights are quantized, and shape
  inference; symbolic shape inference too when sympy is installed).
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import inspect
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .. import _lazy
from .._io import atomic_write_bytes
from ..calib.dataset import CalibrationDataset, open_dataset
from ..calib.entropy import entropy_threshold
from ..calib.specs import io_specs
from ..errors import CalibrationError, ModelError, UsageError
from ..model.load import load_model, model_tensors, verify_written_model
from ..model.toposort import sort_topologically

#: calibration methods of ``quantize_qdq`` (names of onnxruntime's CalibrationMethod)
METHODS: dict[str, str] = {"entropy": "Entropy", "percentile": "Percentile", "minmax": "MinMax"}
#: ops whose inputs get Q/DQ by default: the ones TensorRT runs in INT8 with a speed-up
DEFAULT_OP_TYPES: tuple[str, ...] = ("Conv", "ConvTranspose", "MatMul", "Gemm")
#: percentile of |x| kept by ``method="percentile"``
DEFAULT_PERCENTILE = 99.999
#: bins of the |x| histogram of the entropy and percentile calibrators (TensorRT uses 2048)
ENTROPY_BINS = 2048
#: samples per ``collect_data`` call: bounds the activations ONNX Runtime holds at once
CALIBRATION_CHUNK = 4
#: per-channel weight axis of the ops that have one
PER_CHANNEL_AXIS: dict[str, int] = {"Conv": 0, "ConvTranspose": 1}
#: QuantizeLinear/DequantizeLinear gained the ``axis`` attribute (per-channel) in opset 13
PER_CHANNEL_OPSET = 13
#: QuantizeLinear/DequantizeLinear exist from opset 10
QDQ_OPSET = 10
#: the first IR version in which an initializer need not be a graph input
INITIALIZER_NOT_INPUT_IR = 4
#: serialised size above which a model is handed to ONNX Runtime with external data (protobuf
#: refuses messages of 2 GiB or more)
INLINE_LIMIT = (1 << 31) - 1


def default_opset(model: onnx.ModelProto) -> int:
    """The model's ``ai.onnx`` opset version (0 when it imports none)."""
    for o in model.opset_import:
        if (o.domain or "") in ("", "ai.onnx"):
            return int(o.version)
    return 0


def upgrade_for_qdq(
    model: onnx.ModelProto, *, per_channel: bool, source: str
) -> tuple[onnx.ModelProto, bool, str | None]:
    """``(model, per_channel, note)`` ready for Q/DQ: opset raised where the Q/DQ form needs it.

    Per-channel Q/DQ needs opset 13 (``axis``); an older model is converted with
    ``onnx.version_converter``. If that fails, per-tensor Q/DQ (opset 10) is used instead, and
    the note says so; a model the converter cannot bring even to opset 10 is refused.
    """
    opset = default_opset(model)
    need = PER_CHANNEL_OPSET if per_channel else QDQ_OPSET
    if opset >= need:
        return model, per_channel, None
    from onnx import version_converter

    try:
        up = version_converter.convert_version(model, PER_CHANNEL_OPSET)
        onnx.checker.check_model(up)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError/its own types
        why = _describe(exc)
        if opset >= QDQ_OPSET:
            return (
                model,
                False,
                f"per-tensor weight scales: per-channel Q/DQ needs opset {PER_CHANNEL_OPSET} and "
                f"upgrading {source} from opset {opset} failed ({why})",
            )
        raise ModelError(
            f"{source} has opset {opset}; Q/DQ needs opset {QDQ_OPSET} or newer",
            why=f"onnx's version converter could not upgrade it ({why})",
            fix=f"re-export the model with opset {PER_CHANNEL_OPSET} or newer",
        ) from exc
    return (
        up,
        per_channel,
        f"upgraded a copy of {source} from opset {opset} to {PER_CHANNEL_OPSET} "
        f"(per-channel Q/DQ needs it; the input model is unchanged)",
    )


@dataclass(frozen=True)
class Excludes:
    """Nodes to keep in float, by exact name and by op type."""

    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice through the root logger and prints its calibration
    progress; neither belongs on orinbench's stdout (which may carry JSON)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def prune_opset_imports(model: onnx.ModelProto) -> int:
    """Drop opset imports of domains no node uses (ORT's optimiser adds a dozen); returns count."""
    used = {n.domain or "" for n in model.graph.node} | {"", "ai.onnx"}
    keep = [o for o in model.opset_import if (o.domain or "") in used]
    dropped = len(model.opset_import) - len(keep)
    if dropped:
        del model.opset_import[:]
        model.opset_import.extend(keep)
    return dropped


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def name_unnamed_nodes(model: onnx.ModelProto) -> int:
    """Give every unnamed node a stable name (``<OpType>_<index>``): exclusion works by name."""
    used = {n.name for n in model.graph.node if n.name}
    named = 0
    for i, node in enumerate(model.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{i}"
            while candidate in used:
                candidate += "_"
            node.name = candidate
            used.add(candidate)
            named += 1
    return named


def drop_initializer_inputs(model: onnx.ModelProto, *, source: str) -> str | None:
    """Remove the graph inputs that name initializers, in place; returns a note, or None.

    IR 3 requires every initializer to be a graph input as well (the onnx package's ``light_*``
    models, old Caffe2 exports). ONNX Runtime's pre-processing folds some of those weights into
    other nodes and drops the initializers but not their inputs, which calibration then asks the
    data for. They are weights, never provided by the calibration data (see
    :func:`~orinbench.calib.specs.io_specs`), so they are made plain initializers: removed from
    the inputs, with the IR version raised to 4, the first that allows an initializer that is not
    an input.
    """
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    dropped = len(model.graph.input) - len(keep)
    if not dropped:
        return None
    del model.graph.input[:]
    model.graph.input.extend(keep)
    old_ir = int(model.ir_version)
    model.ir_version = max(old_ir, INITIALIZER_NOT_INPUT_IR)
    ir = (
        f" and raised its IR version from {old_ir} to {model.ir_version}"
        if model.ir_version != old_ir
        else ""
    )
    return (
        f"removed {dropped} weight(s) from the graph inputs of a copy of {source}{ir} (weights "
        "are not user inputs, and ONNX Runtime's pre-processing needs them out; the input model "
        "is unchanged)"
    )


def uses_external_data(model: onnx.ModelProto) -> bool:
    """Whether any tensor of ``model`` (loaded or not) is stored in an external-data file."""
    return any(
        t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL
        for t in model_tensors(model)
    )


def save_copy(
    model: onnx.ModelProto, path: str | os.PathLike[str], *, external: bool | None = None
) -> bool:
    """Save ``model`` (its tensors loaded) to ``path``; returns whether it used external data.

    With ``external`` None, a model under :data:`INLINE_LIMIT` is saved self-contained and a
    larger one, which protobuf cannot serialise as one message, keeps its tensors in
    ``<name>.data`` next to ``path``.
    """
    p = Path(path)
    if external is None:
        external = model.ByteSize() > INLINE_LIMIT
    if not external:
        onnx.save_model(model, str(p))
        return False
    data = p.with_name(p.name + ".data")
    # onnx appends tensors to an existing data file: start from none
    data.unlink(missing_ok=True)
    onnx.save_model(
        model,
        str(p),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )
    return True


def preprocess(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    on_note: Callable[[str], None] | None = None,
    source: str | None = None,
) -> Path:
    """ONNX Runtime's pre-processing for quantization, then names for unnamed nodes.

    ``source`` names the model in notes and errors (default ``model_path``): a caller that
    passes a temporary copy names the user's file.

    Symbolic shape inference needs sympy; without it (or when it fails on the model) the step runs
    with ONNX shape inference only, which is enough for convolutional networks.

    ONNX Runtime gets a copy made in a temporary folder, not ``model_path``, when the model keeps
    its weights in external-data files (torch's dynamo exporter does): ``quant_pre_process``
    writes its intermediate models to a folder of its own, where they would point to a weights
    file that is not there. It also gets a copy when weights are listed as graph inputs
    (:func:`drop_initializer_inputs`; ``on_note`` receives the note). A model over
    :data:`INLINE_LIMIT` keeps external data throughout, and so does the pre-processed model at
    ``out_path`` (in ``<out name>.data`` next to it).
    """
    quant_pre_process = _lazy.require("onnxruntime.quantization.shape_inference").quant_pre_process
    src = Path(model_path)
    out = Path(out_path)
    name = source or str(src)
    header = load_model(src, load_external_data=False)
    inits = {t.name for t in header.graph.initializer}
    needs_copy = uses_external_data(header) or any(i.name in inits for i in header.graph.input)
    del header
    external = False
    with tempfile.TemporaryDirectory(prefix="orinbench-pre-") as tmp:
        given = src
        if needs_copy:
            model = load_model(src)
            note = drop_initializer_inputs(model, source=name)
            if note and on_note is not None:
                on_note(note)
            given = Path(tmp) / "model.onnx"
            external = save_copy(model, given)
            del model
        options: dict[str, Any] = {}
        if external:
            options = {
                "save_as_external_data": True,
                "all_tensors_to_one_file": True,
                "external_data_location": out.name + ".data",
            }
            (out.parent / (out.name + ".data")).unlink(missing_ok=True)
        attempts = [False, True] if _lazy.is_available("sympy") else [True]
        last: BaseException | None = None
        for skip_symbolic in attempts:
            try:
                with _quiet():
                    quant_pre_process(
                        str(given), str(out), skip_symbolic_shape=skip_symbolic, **options
                    )
                break
            except Exception as exc:  # ORT's optimiser and the shape inferences raise many types
                last = exc
        else:
            raise ModelError(
                f"ONNX Runtime cannot pre-process {name} for quantization",
                why=_describe(last) if last else None,
                fix=_preprocess_fix(src),
            )
    model = onnx.load(str(out))
    if name_unnamed_nodes(model):
        save_copy(model, out, external=external)
    return out


def _preprocess_fix(src: Path) -> str:
    """The fix of a pre-processing failure: an opset upgrade only when the opset is old."""
    try:
        opset = default_opset(load_model(src, load_external_data=False))
    except ModelError:
        opset = 0
    if 0 < opset < PER_CHANNEL_OPSET:
        return f"re-export the model with opset {PER_CHANNEL_OPSET} or newer (it has opset {opset})"
    return (
        "check that the model passes onnx.checker.check_model(path, full_check=True) (ONNX "
        "shape inference) and runs with 'orinbench bench --backend onnxruntime'; re-export it "
        "if not"
    )


def split_excludes(model: onnx.ModelProto, tokens: Iterable[str]) -> Excludes:
    """Split ``--exclude`` values into op types and node names/globs.

    A value that is an op type of ``model`` (``Softmax``) and no node's name is an op type; every
    other value is a node name or a glob over node names (``heads.*``), which
    :func:`match_nodes` checks when the model is quantized.
    """
    names = {n.name for n in model.graph.node}
    op_types = {n.op_type for n in model.graph.node}
    nodes: list[str] = []
    ops: list[str] = []
    for token in tokens:
        (ops if token in op_types and token not in names else nodes).append(token)
    return Excludes(tuple(dict.fromkeys(nodes)), tuple(dict.fromkeys(ops)))


def match_nodes(patterns: Iterable[str], names: Sequence[str], *, source: str) -> list[str]:
    """Node names matched by exact names or globs; one matching nothing is a one-line error."""
    found: list[str] = []
    for pattern in patterns:
        if pattern in names:
            found.append(pattern)
            continue
        hits = fnmatch.filter(names, pattern) if any(c in pattern for c in "*?[") else []
        if not hits:
            close = difflib.get_close_matches(pattern, list(names), n=3)
            raise UsageError(
                f"--exclude '{pattern}' matches no node of {source}",
                why=f"did you mean {', '.join(close)}?" if close else None,
                fix="pass an exact node name, a glob such as 'heads.*', or an op type (the "
                "'quantized' and 'float' lists of 'orinbench quantize MODEL ... --json' name the "
                "nodes)",
            )
        found.extend(hits)
    return list(dict.fromkeys(found))


def quantizable_nodes(
    model: onnx.ModelProto, op_types: Sequence[str] = DEFAULT_OP_TYPES
) -> list[str]:
    """Names of the nodes ``quantize_qdq`` would quantize (in graph order)."""
    wanted = set(op_types)
    return [n.name for n in model.graph.node if n.op_type in wanted and n.name]


def _reader(feeds: Iterable[dict[str, Any]], count: int) -> Any:
    base = _lazy.require("onnxruntime.quantization").CalibrationDataReader

    class _DatasetReader(base):  # type: ignore[misc, valid-type]
        """Feeds validated samples to ONNX Runtime's calibrator, one per call."""

        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

        def __len__(self) -> int:
            return count

    return _DatasetReader()


def supports_precomputed_ranges() -> bool:
    """Whether quantize_static takes precomputed ranges (``calibration_cache_path`` and
    ``save_tensors_data``, in recent onnxruntime); older ones calibrate inside quantize_static."""
    qz = _lazy.require("onnxruntime.quantization")
    params = inspect.signature(qz.quantize_static).parameters
    return "calibration_cache_path" in params and hasattr(qz, "save_tensors_data")


def range_overrides(ranges: Any) -> dict[str, list[dict[str, Any]]]:
    """``TensorsData`` as quantize_static's ``TensorQuantOverrides``: per tensor rmin/rmax.

    Older onnxruntime (1.23 is the newest for Python 3.10, JetPack 6's) has no
    ``calibration_cache_path``; its quantize_static calibrates by itself, and its "entropy" is
    effectively min/max. It does honour rmin/rmax overrides, so orinbench's own ranges reach the
    model that way.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, td in ranges.items():
        # numpy scalars: the quantizer reads their dtype
        lo, hi = (np.asarray(v, np.float32).reshape(-1)[0] for v in td.range_value)
        out[name] = [{"rmin": lo, "rmax": hi}]
    return out


def calibrate_ranges(
    model_path: str | os.PathLike[str],
    *,
    dataset: CalibrationDataset,
    method: str = "entropy",
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    percentile: float = DEFAULT_PERCENTILE,
    max_samples: int | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    ort: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> Any:
    """Calibrate the inputs of the ``op_types`` nodes; returns ONNX Runtime's ``TensorsData``.

    ``source`` names the model in errors (default ``model_path``, often a temporary copy).

    ``ort`` takes the ONNX Runtime options of the other commands (``providers``,
    ``intra_op_threads``; see :func:`orinbench.cli._common.ort_options`) for the session that
    runs the calibration samples.

    ``on_progress(samples done, fraction)`` is called after each chunk of samples.

    ``minmax`` uses ONNX Runtime's min/max calibrator. ``percentile`` and ``entropy`` collect a
    histogram of |x| per tensor (:data:`ENTROPY_BINS` bins, ONNX Runtime's histogram collector);
    percentile keeps ``percentile`` % of the values, entropy picks the threshold that minimises
    the KL divergence (:func:`orinbench.calib.entropy.entropy_threshold`, TensorRT's method).
    ``quantize_static``'s own entropy calibration is not used: its histogram has as many bins as
    INT8 has levels, which leaves a single candidate threshold, the maximum. Samples go to ONNX
    Runtime in chunks of :data:`CALIBRATION_CHUNK`, so the activations it holds for the
    histograms do not grow with the dataset.
    """
    qz = _lazy.require("onnxruntime.quantization")
    extra: dict[str, Any] = {"symmetric": True}
    if method == "minmax":
        ort_method = qz.CalibrationMethod.MinMax
    else:
        ort_method = qz.CalibrationMethod.Percentile
        extra.update(num_bins=ENTROPY_BINS, percentile=float(percentile))
    with tempfile.TemporaryDirectory(prefix="orinbench-calib-") as tmp:
        try:
            with _quiet():
                calibrator = qz.create_calibrator(
                    Path(model_path),
                    list(op_types),
                    augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                    calibrate_method=ort_method,
                    extra_options=extra,
                    providers=list(ort["providers"]) if ort and ort.get("providers") else None,
                )
                if ort and ort.get("intra_op_threads"):
                    _limit_threads(calibrator, int(ort["intra_op_threads"]))
                total = dataset.count if max_samples is None else min(dataset.count, max_samples)
                done = 0

                def collect(chunk: list[dict[str, Any]]) -> None:
                    nonlocal done
                    calibrator.collect_data(_reader(chunk, len(chunk)))
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, done / max(total, 1))

                chunk: list[dict[str, Any]] = []
                for feed in dataset.feeds(max_samples):
                    chunk.append(feed)
                    if len(chunk) == CALIBRATION_CHUNK:
                        collect(chunk)
                        chunk = []
                if chunk:
                    collect(chunk)
                if method != "entropy":
                    return calibrator.compute_data()
                histograms = calibrator.collector.histogram_dict
        except CalibrationError:
            raise
        except Exception as exc:  # ORT raises ValueError, RuntimeError and its own types
            raise ModelError(
                f"ONNX Runtime could not calibrate {source or model_path}",
                why=_describe(exc),
                fix=_calibration_fix(exc),
            ) from exc
    cal = _lazy.require("onnxruntime.quantization.calibrate")
    ranges = {}
    for name, (hist, edges, *_rest) in histograms.items():
        t = np.float32(entropy_threshold(hist, edges))
        ranges[name] = cal.TensorData(
            lowest=np.array(-t, np.float32), highest=np.array(t, np.float32)
        )
    return cal.TensorsData(qz.CalibrationMethod.Entropy, ranges)


def _limit_threads(calibrator: Any, threads: int) -> None:
    """Re-open ONNX Runtime's calibration session with ``threads`` intra-op threads.

    ``create_calibrator`` takes no session options: it opens the session itself with graph
    optimisations off (``CalibraterBase.create_inference_session``, onnxruntime 1.16 to 1.32).
    The session is made again the same way, plus the thread count.
    """
    ort_mod = _lazy.require("onnxruntime")
    path = getattr(calibrator, "augmented_model_path", None)
    if path is None or not hasattr(calibrator, "infer_session"):
        raise ModelError(
            "this onnxruntime's calibrator cannot be given a thread count",
            why="its calibrator has no augmented_model_path / infer_session",
            fix="leave out --ort-threads for quantize",
        )
    opts = ort_mod.SessionOptions()
    opts.graph_optimization_level = ort_mod.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = threads
    calibrator.infer_session = ort_mod.InferenceSession(
        str(path), sess_options=opts, providers=calibrator.execution_providers
    )


def quantize_qdq(
    model_path: str | os.PathLike[str],
    *,
    data: CalibrationDataset | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    method: str = "entropy",
    per_channel: bool = True,
    exclude_nodes: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    max_samples: int | None = None,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    only_nodes: Sequence[str] | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    preprocess_model: bool = True,
    tensor_ranges: Any = None,
    on_progress: Callable[[int, float], None] | None = None,
    allow_empty: bool = False,
    on_note: Callable[[str], None] | None = None,
    ort: Mapping[str, Any] | None = None,
) -> Path:
    """Write an explicitly quantized (Q/DQ, INT8) copy of ``model_path`` to ``out_path``.

    ``data`` is a validated :class:`CalibrationDataset` or anything :func:`open_dataset` takes.
    ``exclude_nodes`` (exact names or globs) and ``exclude_op_types`` stay in float;
    ``only_nodes``, when given, restricts quantization to those nodes. ``preprocess_model=False``
    skips ONNX Runtime's pre-processing (for a model that went through :func:`preprocess`).
    ``tensor_ranges`` (from :func:`calibrate_ranges` on the same pre-processed model) skips the
    calibration, so that several quantizations of one model share one. The output is written
    atomically; returns its path.

    A model older than opset 13 is upgraded first (:func:`upgrade_for_qdq`). The output is
    checked (ONNX checker, ONNX Runtime load) before it is written, and a model in which nothing
    was quantized is refused unless ``allow_empty``. ``on_note`` receives one line for each
    thing done that the caller did not ask for (the opset upgrade, a per-tensor fallback).
    """
    if method not in METHODS:
        raise UsageError(
            f"unknown calibration method '{method}'", fix=f"use one of {', '.join(METHODS)}"
        )
    if not 0 < percentile <= 100:
        raise UsageError(f"percentile {percentile} is out of (0, 100]", fix="pass e.g. 99.999")
    qz = _lazy.require("onnxruntime.quantization")
    src = Path(model_path)
    model = load_model(src)
    inputs, _ = io_specs(model)
    dataset = open_dataset(data, inputs=inputs, max_samples=max_samples)
    # before the opset upgrade, which keeps IR 3 (and so weights as inputs) when it raises the opset
    dropped = drop_initializer_inputs(model, source=str(src))
    if dropped and on_note is not None:
        on_note(dropped)
    model, per_channel, note = upgrade_for_qdq(model, per_channel=per_channel, source=str(src))
    if note and on_note is not None:
        on_note(note)
    upgraded = note is not None and default_opset(model) >= PER_CHANNEL_OPSET

    with tempfile.TemporaryDirectory(prefix="orinbench-qdq-") as tmp:
        work = Path(tmp) / "model.onnx"
        if upgraded or dropped:
            # pre-processing reads a file: give it the changed copy, never the user's model
            src_for_work = Path(tmp) / "changed.onnx"
            save_copy(model, src_for_work)
        else:
            src_for_work = src
        if preprocess_model:
            preprocess(src_for_work, work, on_note=on_note, source=str(src))
        else:
            name_unnamed_nodes(model)
            save_copy(model, work)
        prepared = onnx.load(str(work))
        # names of the original model count too: a node that pre-processing fused away
        # (BatchNorm into Conv) needs no exclusion, but naming it is no mistake
        known = list(
            dict.fromkeys(
                [n.name for n in prepared.graph.node if n.name]
                + [n.name for n in model.graph.node if n.name]
            )
        )
        excl = set(match_nodes(exclude_nodes, known, source=str(src)))
        excl.update(n.name for n in prepared.graph.node if n.op_type in set(exclude_op_types))
        candidates = [
            n
            for n in prepared.graph.node
            if n.op_type in op_types
            and n.name not in excl
            and (only_nodes is None or n.name in only_nodes)
        ]
        if not candidates and not allow_empty:
            # say so before the calibration, which can take minutes
            raise ModelError(
                f"nothing in {src} can be quantized; no model was written",
                why=_empty_reason(
                    summarize_qdq_model(prepared, op_types=op_types), op_types, excluded=len(excl)
                ),
                fix="pass --op-types with the model's compute ops, quantize the subgraph's "
                "model on its own, or pass --allow-empty to write it anyway",
            )
        extra: dict[str, Any] = {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "CalibTensorRangeSymmetric": True,
            "QuantizeBias": False,
            "AddQDQPairToWeight": True,
            "OpTypesToExcludeOutputQuantization": list(op_types),
            "QDQOpTypePerChannelSupportToAxis": dict(PER_CHANNEL_AXIS),
        }
        if method == "percentile":
            extra["CalibPercentile"] = float(percentile)
        ranges = tensor_ranges
        if ranges is None:
            ranges = calibrate_ranges(
                work,
                dataset=dataset,
                method=method,
                op_types=op_types,
                percentile=percentile,
                max_samples=max_samples,
                on_progress=on_progress,
                ort=ort,
                source=str(src),
            )
        calib: dict[str, Any]
        if supports_precomputed_ranges():
            cache = Path(tmp) / "ranges.json"
            qz.save_tensors_data(ranges, cache)
            calib = {"calibration_data_reader": None, "calibration_cache_path": str(cache)}
        else:
            # an older onnxruntime calibrates inside quantize_static; its ranges are replaced
            # by orinbench's through TensorQuantOverrides, so that calibration only needs to see
            # one sample (it must run: quantize_static wants a reader)
            extra["TensorQuantOverrides"] = range_overrides(ranges)
            calib = {"calibration_data_reader": _reader(dataset.feeds(1), 1)}
        out_tmp = Path(tmp) / "quantized.onnx"
        try:
            with _quiet():
                qz.quantize_static(
                    str(work),
                    str(out_tmp),
                    quant_format=qz.QuantFormat.QDQ,
                    op_types_to_quantize=list(op_types),
                    per_channel=per_channel,
                    reduce_range=False,
                    activation_type=qz.QuantType.QInt8,
                    weight_type=qz.QuantType.QInt8,
                    nodes_to_quantize=list(only_nodes) if only_nodes is not None else None,
                    nodes_to_exclude=sorted(excl),
                    calibrate_method=getattr(qz.CalibrationMethod, METHODS[method]),
                    extra_options=extra,
                    **calib,
                )
        except CalibrationError:
            raise
        except Exception as exc:  # ORT's quantizer raises ValueError, RuntimeError, its own types
            raise ModelError(
                f"ONNX Runtime could not quantize {src}",
                why=_describe(exc),
                fix="try --method minmax, or --exclude the node the message names",
            ) from exc
        result = onnx.load(str(out_tmp))
        prune_opset_imports(result)
        sort_topologically(result.graph)
        summary = summarize_qdq_model(result, op_types=op_types)
        if summary.quantize_nodes == 0 and not allow_empty:
            raise ModelError(
                f"nothing in {src} was quantized; no model was written",
                why=_empty_reason(summary, op_types, excluded=len(excl)),
                fix="pass --op-types with the model's compute ops, quantize the subgraph's "
                "model on its own, or pass --allow-empty to write it anyway",
            )
        for line in verify_written_model(
            result,
            what=f"the Q/DQ model of {src}",
            fix="try --per-tensor or --method minmax, or --exclude the node the message names",
        ):
            if on_note is not None:
                on_note(line)
        return atomic_write_bytes(out_path, result.SerializeToString())


def _empty_reason(summary: QdqSummary, op_types: Sequence[str], *, excluded: int) -> str:
    ops = "/".join(op_types)
    if summary.in_subgraphs and not summary.quantized and not summary.float_nodes:
        return (
            f"its {summary.in_subgraphs} {ops} node(s) all sit inside If/Loop/Scan subgraphs, "
            "which ONNX Runtime's quantizer does not reach"
        )
    if not summary.quantized and not summary.float_nodes:
        return f"it has no {ops} node"
    if excluded:
        return f"every {ops} node was excluded or left in float ({excluded} excluded)"
    return f"ONNX Runtime's quantizer left all {len(summary.float_nodes)} {ops} node(s) in float"


@dataclass(frozen=True)
class QdqSummary:
    """What a Q/DQ model holds: its Q/DQ node count and which compute nodes are quantized."""

    quantize_nodes: int
    dequantize_nodes: int
    quantized: tuple[str, ...]
    float_nodes: tuple[str, ...]
    #: ``op_types`` nodes inside If/Loop/Scan subgraphs (not in ``quantized``/``float_nodes``)
    in_subgraphs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantize_nodes": self.quantize_nodes,
            "dequantize_nodes": self.dequantize_nodes,
            "quantized": list(self.quantized),
            "float": list(self.float_nodes),
            "in_subgraphs": self.in_subgraphs,
        }


def _subgraph_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node inside the subgraphs of ``graph``'s nodes, at any depth."""
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from sub.node
                yield from _subgraph_nodes(sub)


def summarize_qdq(
    path: str | os.PathLike[str], *, op_types: Sequence[str] = DEFAULT_OP_TYPES
) -> QdqSummary:
    """Count Q/DQ nodes and list the ``op_types`` nodes whose activation input is dequantized."""
    return summarize_qdq_model(load_model(path, load_external_data=False), op_types=op_types)


def summarize_qdq_model(
    model: onnx.ModelProto, *, op_types: Sequence[str] = DEFAULT_OP_TYPES
) -> QdqSummary:
    """:func:`summarize_qdq` of a loaded model; Q/DQ nodes inside subgraphs count too."""
    inner = list(_subgraph_nodes(model.graph))
    producers = {out: n for n in model.graph.node for out in n.output}
    quantized: list[str] = []
    floats: list[str] = []
    for n in model.graph.node:
        if n.op_type not in op_types:
            continue
        first = producers.get(n.input[0]) if n.input else None
        (quantized if first is not None and first.op_type == "DequantizeLinear" else floats).append(
            n.name
        )
    every = [*model.graph.node, *inner]
    return QdqSummary(
        quantize_nodes=sum(1 for n in every if n.op_type == "QuantizeLinear"),
        dequantize_nodes=sum(1 for n in every if n.op_type == "DequantizeLinear"),
        quantized=tuple(quantized),
        float_nodes=tuple(floats),
        in_subgraphs=sum(1 for n in inner if n.op_type in op_types),
    )


@dataclass(frozen=True)
class QuantizeRun:
    """What ``orinbench quantize`` did: the output, the data used, the time taken, the result."""

    out_path: Path
    method: str
    sample_count: int
    data_source: str
    validate_s: float
    quantize_s: float
    summary: QdqSummary
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "notes": list(self.notes),
            "out": str(self.out_path),
            "method": self.method,
            "sample_count": self.sample_count,
            "data": self.data_source,
            "validate_s": self.validate_s,
            "quantize_s": self.quantize_s,
            **self.summary.to_dict(),
        }


def run_quantize(
    model_path: str | os.PathLike[str],
    *,
    data: CalibrationDataset | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    max_samples: int | None = None,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    **options: Any,
) -> QuantizeRun:
    """:func:`quantize_qdq` with the dataset validated first and both steps timed.

    ``options`` are :func:`quantize_qdq`'s other keywords (method, per_channel, exclude_nodes,
    exclude_op_types, percentile, only_nodes, preprocess_model, tensor_ranges, allow_empty, ort).
    The notes :func:`quantize_qdq` gives are kept in :attr:`QuantizeRun.notes`.
    """
    t0 = time.perf_counter()
    inputs, _ = io_specs(load_model(model_path, load_external_data=False))
    dataset = open_dataset(data, inputs=inputs, max_samples=max_samples)
    t1 = time.perf_counter()
    notes: list[str] = []
    out = quantize_qdq(
        model_path,
        data=dataset,
        out_path=out_path,
        max_samples=max_samples,
        op_types=op_types,
        on_note=notes.append,
        **options,
    )
    t2 = time.perf_counter()
    used = dataset.count if max_samples is None else min(dataset.count, max_samples)
    return QuantizeRun(
        out_path=out,
        method=str(options.get("method", "entropy")),
        sample_count=used,
        data_source=dataset.source,
        validate_s=t1 - t0,
        quantize_s=t2 - t1,
        summary=summarize_qdq(out, op_types=op_types),
        notes=tuple(notes),
    )


def _calibration_fix(exc: BaseException) -> str:
    """What to do when ONNX Runtime's calibration fails: its histogram methods size their bins
    from the activations' range, and activations near float32's limits (1e30 and up) ask for more
    bins than numpy can allocate ("Too many bins") or overflow to a non-finite range; min-max
    calibration needs no histogram."""
    text = str(exc).lower()
    if "too many bins" in text or ("range of" in text and "not finite" in text):
        return (
            "the model's activations on this data span a range too wide for a histogram, or "
            "overflow (check the calibration data's scale: values near float32's limits); use "
            "--method minmax, or fix the data"
        )
    return "check that the model runs with 'orinbench bench --backend onnxruntime'"
