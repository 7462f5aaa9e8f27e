"""Loading an engine file, with errors that say what is wrong and how to rebuild, and its IO.

TensorRT refuses an engine from another TensorRT version or another GPU with an internal message
("Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed", "expecting compute 8.7
got compute 9.0") and ``deserialize_cuda_engine`` returns None. Before it gets there the sidecar
is compared with the running TensorRT and GPU; without a sidecar, TensorRT's log is read and its
known messages are translated. Either way the user gets one line that names the TensorRT versions
or the GPUs and the ``orinbench build`` command that rebuilds the engine.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..._io import require_file
from ...errors import EngineCompatibilityError, InputFileError
from ...results.schema import TensorSpec
from . import compat
from .cuda import DeviceInfo
from .logger import TrtLog

#: "The engine plan file is not compatible with this version of TensorRT, expecting library
#: version 10.3.0.30 got 8.6.2.3, please rebuild." (expecting = running, got = the plan's)
_RE_LIBRARY = re.compile(r"expecting library version ([\w.]+) got ([\w.]+)")
#: "...generated on an incompatible device, expecting compute 8.7 got compute 9.0, please rebuild."
_RE_DEVICE = re.compile(r"expecting compute ([\d.]+) got compute ([\d.]+)")
#: "Version tag does not match. Note: Current Version: 237, Serialized Engine Version: 239"
_RE_TAG = re.compile(r"Version tag does not match")
_RE_PLUGIN = re.compile(r"IPluginCreator not found|could not find plugin|getPluginCreator", re.I)
_RE_TRUNCATED = re.compile(r"does not match archive size|truncat|end of file", re.I)
_RE_MAGIC = re.compile(r"Magic tag does not match", re.I)


def rebuild_command(
    sidecar: Mapping[str, Any] | None,
    engine_path: str | os.PathLike[str],
    *,
    contexts: int | None = None,
) -> str:
    """The ``orinbench build`` command line that makes ``engine_path`` again, as far as known;
    ``contexts``: with that many optimization profiles (one per concurrent execution context)."""
    onnx = ((sidecar or {}).get("onnx") or {}).get("path") or "MODEL.onnx"
    parts = ["orinbench", "build", str(onnx)]
    settings = (sidecar or {}).get("settings") or {}
    if settings.get("precision"):
        parts += ["--precision", str(settings["precision"])]
    for name, rng in sorted((settings.get("shapes") or {}).items()):
        if isinstance(rng, Mapping) and all(k in rng for k in ("min", "opt", "max")):
            dims = "/".join("x".join(str(d) for d in rng[k]) for k in ("min", "opt", "max"))
            parts += ["--shapes", f"{name}:{dims}"]
    if contexts is None:
        contexts = settings.get("optimization_profiles")
    if isinstance(contexts, int) and contexts > 1:
        parts += ["--contexts", str(contexts)]
    for lib in settings.get("plugins") or ():
        parts += ["--plugins", str(lib.get("path", ""))]
    parts += ["--out", str(engine_path), "--force"]
    return shlex.join(parts)


def check_sidecar(
    sidecar: Mapping[str, Any] | None,
    *,
    engine_path: Path,
    trt_version: str,
    device: DeviceInfo | None,
) -> None:
    """Raise :class:`EngineCompatibilityError` when the sidecar says the engine cannot load here."""
    if not sidecar:
        return
    fix = f"rebuild it here: {rebuild_command(sidecar, engine_path)}"
    built_with = str((sidecar.get("versions") or {}).get("tensorrt") or "")
    if built_with and built_with != trt_version:
        raise EngineCompatibilityError(
            f"{engine_path} was built by TensorRT {built_with}, this is TensorRT {trt_version}",
            why="an engine only loads in the TensorRT version that built it",
            fix=fix,
        )
    gpu = sidecar.get("gpu") or {}
    built_cc = gpu.get("compute_capability")
    if device is not None and built_cc and built_cc != device.cc_text:
        raise EngineCompatibilityError(
            f"{engine_path} was built for the GPU {gpu.get('name')!r} "
            f"(compute capability {built_cc}), this GPU is {device.name!r} "
            f"(compute capability {device.cc_text})",
            why="an engine only loads on the GPU model it was built for",
            fix=fix,
        )
    recorded = (sidecar.get("engine") or {}).get("size_bytes")
    size = engine_path.stat().st_size
    if isinstance(recorded, int) and recorded != size:
        raise InputFileError(
            f"{engine_path} is {size} bytes, its sidecar says {recorded}",
            why="the file is truncated or was replaced",
            fix=fix,
        )


def translate_failure(
    errors: Sequence[str],
    *,
    engine_path: Path,
    sidecar: Mapping[str, Any] | None,
    trt_version: str,
    device: DeviceInfo | None,
) -> Exception:
    """The one-line error for a ``deserialize_cuda_engine`` that returned None."""
    fix = f"rebuild it here: {rebuild_command(sidecar, engine_path)}"
    text = " | ".join(errors)
    m = _RE_LIBRARY.search(text)
    if m:
        return EngineCompatibilityError(
            f"{engine_path} was built by TensorRT {m.group(2)}, this is TensorRT {m.group(1)}",
            why="an engine only loads in the TensorRT version that built it",
            fix=fix,
        )
    if _RE_TAG.search(text):
        return EngineCompatibilityError(
            f"{engine_path} was built by another TensorRT version than this one ({trt_version})",
            why="its serialization version differs (TensorRT: 'Version tag does not match')",
            fix=fix,
        )
    m = _RE_DEVICE.search(text)
    if m:
        here = f"{device.name!r} " if device is not None else ""
        return EngineCompatibilityError(
            f"{engine_path} was built for a GPU of compute capability {m.group(2)}, this GPU "
            f"{here}has {m.group(1)}",
            why="an engine only loads on the GPU model it was built for",
            fix=fix,
        )
    if _RE_PLUGIN.search(text):
        return InputFileError(
            f"{engine_path} uses a TensorRT plugin that is not loaded",
            why=errors[0] if errors else "a plugin creator is missing",
            fix="pass the plugin library with --plugins LIB.so",
        )
    first = errors[0] if errors else "TensorRT gave no reason"
    if _RE_TRUNCATED.search(text):
        what = "truncated or corrupt"
    elif _RE_MAGIC.search(text):
        what = "not a TensorRT engine"
    else:
        what = "not a usable engine"
    return InputFileError(
        f"TensorRT cannot load {engine_path}: the file is {what}",
        why=first,
        fix=fix,
    )


def deserialize(
    trt: Any,
    runtime: Any,
    log: TrtLog,
    engine_path: str | os.PathLike[str],
    *,
    sidecar: Mapping[str, Any] | None,
    device: DeviceInfo | None,
) -> Any:
    """Read and deserialize ``engine_path`` after the sidecar checks; clear errors on failure."""
    path = require_file(engine_path, what="engine file")
    version = str(trt.__version__)
    check_sidecar(sidecar, engine_path=path, trt_version=version, device=device)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {path}", why=exc.strerror or str(exc)) from exc
    if not data:
        raise InputFileError(
            f"{path} is empty", fix=f"rebuild it: {rebuild_command(sidecar, path)}"
        )
    mark = log.mark()
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise translate_failure(
            log.errors_since(mark),
            engine_path=path,
            sidecar=sidecar,
            trt_version=version,
            device=device,
        )
    return engine


def _dims(shape: Any) -> tuple[int | str, ...]:
    return tuple(int(d) if int(d) >= 0 else "?" for d in shape)


def engine_io(trt: Any, engine: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of an engine; dynamic dims are ``"?"`` (see :func:`profile_shapes`)."""
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    for i in range(int(engine.num_io_tensors)):
        name = str(engine.get_tensor_name(i))
        dtype = compat.numpy_dtype(trt, engine.get_tensor_dtype(name))
        spec = TensorSpec(name=name, dtype=str(dtype), shape=_dims(engine.get_tensor_shape(name)))
        (inputs if compat.is_input(trt, engine, name) else outputs).append(spec)
    return tuple(inputs), tuple(outputs)


def profile_shapes(
    engine: Any, name: str, profile_index: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shape of input ``name`` in optimization profile ``profile_index``."""
    lo, opt, hi = engine.get_tensor_profile_shape(name, profile_index)
    return tuple(int(d) for d in lo), tuple(int(d) for d in opt), tuple(int(d) for d in hi)
