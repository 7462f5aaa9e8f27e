"""Loading ONNX files with errors a user can act on, and their content hash.

``onnx.load`` reports a missing external-data file, a truncated file and a text file in three
unrelated ways (FileNotFoundError, protobuf DecodeError, or silently an empty model). Here each
becomes one :class:`~orinbench.errors.ModelError` line that names the file and what to do.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from .._io import require_file, sha256_file
from ..errors import ModelError

#: protobuf refuses to serialise a message of 2 GiB or more; larger models need external data
_PROTO_LIMIT = (1 << 31) - 1


def graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of ``graph`` and of its subgraphs (If/Loop/Scan): initializers, the
    values and indices of sparse initializers, and attribute tensors."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def model_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of ``model``: its graph's and those in its functions' nodes."""
    yield from graph_tensors(model.graph)
    for f in model.functions:
        yield from _node_tensors(f.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from graph_tensors(attr.g)
            for g in attr.graphs:
                yield from graph_tensors(g)


def external_data_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files the ONNX model at ``path`` keeps tensors in (resolved against its folder), in
    order of first use, without reading any weights; ``[]`` for a model that cannot be parsed
    (whoever loads it reports that, with a better message)."""
    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception:  # protobuf and onnx raise many types for a bad file
        return []
    found: dict[Path, None] = {}
    for t in model_tensors(model):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = _external_info(t)[0]
        if location:
            found[p.parent / location] = None
    return list(found)


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [
        t
        for t in model_tensors(model)
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL
    ]


def _external_info(tensor: onnx.TensorProto) -> tuple[str, int, int | None]:
    """(location, offset, length) of one external tensor; length None means "to the end"."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    offset = int(entries.get("offset", "0") or 0)
    length = int(entries["length"]) if entries.get("length") else None
    return location, offset, length


def _check_external_data(model: onnx.ModelProto, path: Path) -> list[Path]:
    """Check every external-data file exists inside the model's folder and is long enough."""
    base = path.parent.resolve()
    files: dict[Path, int] = {}
    for tensor in _external_tensors(model):
        location, offset, length = _external_info(tensor)
        if not location:
            raise ModelError(
                f"cannot load {path}",
                why=f"tensor {tensor.name!r} is marked as external data without a location",
                fix="re-export the model with its external data",
            )
        target = (base / location).resolve()
        if base not in target.parents and target != base:
            raise ModelError(
                f"cannot load {path}",
                why=f"external data of tensor {tensor.name!r} points outside the model's folder "
                f"({location})",
                fix="keep the external data files next to the .onnx file",
            )
        if not target.is_file():
            raise ModelError(
                f"cannot load {path}",
                why=f"its external data file {location!r} (tensor {tensor.name!r}) is missing",
                fix=f"copy {location} next to {path.name}, or re-export the model",
            )
        end = offset + (length or 0)
        files[target] = max(files.get(target, 0), end)
    for target, end in files.items():
        size = target.stat().st_size
        if size < end:
            raise ModelError(
                f"cannot load {path}",
                why=f"external data file {target.name!r} is truncated ({size} bytes, tensors need "
                f"{end})",
                fix="copy the complete file again, or re-export the model",
            )
    return sorted(files)


def _parse(path: Path) -> onnx.ModelProto:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}", why=exc.strerror or str(exc)) from exc
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelError(
            f"{path} is not a readable ONNX model",
            why=f"the protobuf data is invalid or truncated ({type(exc).__name__})",
            fix="check that the file is a complete .onnx export (a copy may have been cut short)",
        ) from exc
    # Arbitrary bytes (an empty file, a text file) can parse as a protobuf message without error;
    # a real ONNX model always has a graph, an IR version and at least one opset import.
    if not model.HasField("graph") or model.ir_version <= 0 or not model.opset_import:
        raise ModelError(
            f"{path} is not an ONNX model",
            why="it has no graph, IR version or opset import",
            fix="pass an .onnx file exported by torch.onnx, tf2onnx or onnx.save",
        )
    return model


def load_model(
    path: str | os.PathLike[str], *, load_external_data: bool = True, check: bool = False
) -> onnx.ModelProto:
    """Load an ONNX model from ``path``, raising a one-line :class:`ModelError` on any problem.

    External data is checked (present, inside the model's folder, long enough) and loaded unless
    ``load_external_data`` is False. With ``check`` the ONNX checker runs as well; it is off by
    default because models that use TensorRT plugins (custom ops in the default domain) fail it
    while still being perfectly usable.
    """
    p = require_file(path, what="ONNX model")
    model = _parse(p)
    if _external_tensors(model):
        _check_external_data(model, p)
        if load_external_data:
            try:
                external_data_helper.load_external_data_for_model(model, str(p.parent))
            except (OSError, ValueError, onnx.checker.ValidationError) as exc:
                raise ModelError(
                    f"cannot load the external data of {p}",
                    why=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    fix="keep the external data files next to the .onnx file, unmodified",
                ) from exc
    if check:
        check_model(model, path=p)
    return model


def check_model(model: onnx.ModelProto, *, path: str | os.PathLike[str] | None = None) -> None:
    """Run the ONNX checker; raise :class:`ModelError` with the checker's first line on failure."""
    try:
        if path is not None and model.ByteSize() > _PROTO_LIMIT:
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        where = str(path) if path is not None else f"model {model.graph.name!r}"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(
            f"{where} fails the ONNX checker",
            why=first,
            fix="re-export the model with a current exporter, or fix the graph",
        ) from exc


def model_sha256(path: str | os.PathLike[str]) -> str:
    """Content hash of a model, as a hex string.

    For a self-contained file this is the SHA-256 of its bytes (what ``sha256sum`` prints). For a
    model with external data it is the SHA-256 of a manifest listing the model file's hash and
    each external file's name and hash, so that changing a weights file changes the hash too.
    """
    p = require_file(path, what="ONNX model")
    own = sha256_file(p)
    model = _parse(p)
    if not _external_tensors(model):
        return own
    files = _check_external_data(model, p)
    manifest = [f"model {own}"]
    base = p.parent.resolve()
    manifest += [f"{f.relative_to(base).as_posix()} {sha256_file(f)}" for f in files]
    return hashlib.sha256("\n".join(manifest).encode()).hexdigest()


#: domains ONNX Runtime's CPU build has kernels for; a node of another domain is a plugin
_ORT_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)


def verify_written_model(
    model: onnx.ModelProto,
    *,
    what: str,
    fix: str = "report this with the model that was converted",
) -> tuple[str, ...]:
    """Check a model orinbench is about to write: the ONNX checker, then an ONNX Runtime load.

    Raises :class:`ModelError` naming the check that failed and why, so that the caller writes
    nothing. A check the model cannot be held to is skipped and named in the returned notes: the
    checker for a model using ops the onnx library does not know (TensorRT plugins in the default
    domain), the ONNX Runtime load for one with plugin domains or when onnxruntime is missing.
    """
    from .. import _lazy
    from ..errors import DependencyMissingError

    notes: list[str] = []
    nodes = list(_all_nodes(model.graph))
    local = {f.name for f in model.functions}
    unknown = sorted(
        {
            n.op_type
            for n in nodes
            if (n.domain or "") in ("", "ai.onnx", "ai.onnx.ml")
            and n.op_type not in local
            and not onnx.defs.has(n.op_type, n.domain or "")
        }
    )
    if unknown:
        notes.append(f"ONNX checker skipped: ops unknown to onnx ({', '.join(unknown[:4])})")
    else:
        try:
            check_model(model)
        except ModelError as exc:
            raise ModelError(
                f"{what} is not a valid ONNX model; nothing was written",
                why=exc.why,
                fix=fix,
            ) from exc
    plugins = sorted({n.domain for n in nodes if (n.domain or "") not in _ORT_DOMAINS})
    if plugins:
        notes.append(f"ONNX Runtime load skipped: plugin domain(s) {', '.join(plugins)}")
        return tuple(notes)
    if model.ByteSize() > _PROTO_LIMIT:
        notes.append("ONNX Runtime load skipped: the model is over 2 GiB")
        return tuple(notes)
    try:
        ort = _lazy.onnxruntime()
    except DependencyMissingError:
        notes.append("ONNX Runtime load skipped: onnxruntime is not installed")
        return tuple(notes)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # validity is the question, not speed: no graph optimisation, one thread
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    try:
        ort.InferenceSession(
            model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own exception types for invalid graphs
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(
            f"{what} does not load in ONNX Runtime; nothing was written",
            why=first[:300],
            fix=fix,
        ) from exc
    return tuple(notes)
