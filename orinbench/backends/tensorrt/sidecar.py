"""``NAME.engine.json``: how an engine was built, so that it can be trusted, compared and skipped.

Layout (``format_version`` 1)::

    {
      "format": "orinbench-engine-sidecar", "format_version": 1,
      "engine":  {"file": "bev.engine", "sha256": "...", "size_bytes": 123},
      "onnx":    {"path": "models/bev.onnx", "sha256": "..."},
      "settings": {...every build setting, see BuildOptions.settings()...},
      "precision_path": "builder-flags" | "strongly-typed",
      "transform": null | {"kind": "fp16" | "qdq", "onnx_sha256": "..."},
      "calibration": null | {"source": "cache" | "data" | "qdq-model", "sha256": "...",
                             "cache_usage": {"verdict": "applied", "matched": 96, ...} (cache)},
      "versions": {"tensorrt": "10.3.0", "cuda_driver": "12.6", "l4t": "36.4.0", "orinbench": ...},
      "gpu": null | {"name": "Orin", "compute_capability": "8.7", ...},
      "build": {"seconds": 41.2, "finished_utc": "...", "log": "bev.engine.log"},
      "io": {"inputs": [TensorSpec...], "outputs": [...]},
      "layers": null | {"count": 210, "precision": {"FP16": 180, "FP32": 30}, "source": ...},
      "repeat": {"kept": "fastest of 6 builds", ...}   (only for an engine kept by --repeat)
    }

:func:`build_key` is the part that decides whether a build is "up to date": the ONNX content, the
settings, the calibration input, the TensorRT version and the GPU. The timing cache is not part of
it: it only makes builds faster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._io import atomic_write_json, sha256_file
from ...errors import InputFileError

FORMAT = "orinbench-engine-sidecar"
FORMAT_VERSION = 1

#: written by JetPack: "# R36 (release), REVISION: 4.0, GCID: ..., BOARD: generic, EABI: aarch64"
L4T_RELEASE_FILE = Path("/etc/nv_tegra_release")


def sidecar_path(engine_path: str | os.PathLike[str]) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def log_path(engine_path: str | os.PathLike[str]) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".log")


def l4t_version(path: Path = L4T_RELEASE_FILE) -> str | None:
    """L4T release of a Jetson ("36.4.0"), None elsewhere."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    rev = m.group(2)
    return f"{m.group(1)}.{rev}" if rev.count(".") >= 1 else f"{m.group(1)}.{rev}.0"


def read_sidecar(engine_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sidecar of ``engine_path``, None when there is none; a corrupt one is an error."""
    path = sidecar_path(engine_path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(
            f"cannot read the engine sidecar {path}",
            why=str(exc),
            fix="delete it and rebuild the engine with 'orinbench build ... --force'",
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputFileError(
            f"{path} is not an orinbench engine sidecar",
            fix="delete it and rebuild the engine with 'orinbench build ... --force'",
        )
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise InputFileError(
            f"{path} was written by a newer orinbench (format {data.get('format_version')})",
            fix="upgrade orinbench",
        )
    return data


def write_sidecar(engine_path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    return atomic_write_json(sidecar_path(engine_path), dict(data))


def folder_sha256(folder: str | os.PathLike[str]) -> str:
    """Content hash of a folder: every regular file's relative path and SHA-256, sorted."""
    root = Path(folder)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root).as_posix()).encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
        h.update(b"\n")
    return h.hexdigest()


def build_key(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a sidecar that make two builds the same build."""
    gpu = sidecar.get("gpu") or {}
    return {
        "onnx_sha256": (sidecar.get("onnx") or {}).get("sha256"),
        "settings": sidecar.get("settings"),
        "calibration": (sidecar.get("calibration") or {}).get("sha256"),
        "tensorrt": (sidecar.get("versions") or {}).get("tensorrt"),
        "gpu": [gpu.get("name"), gpu.get("compute_capability")] if gpu else None,
    }


def up_to_date(
    engine_path: str | os.PathLike[str], wanted_key: Mapping[str, Any]
) -> tuple[bool, str]:
    """(True, "") when the engine and its sidecar match ``wanted_key``; else (False, reason)."""
    engine_file = Path(engine_path)
    if not engine_file.is_file():
        return False, "no engine yet"
    try:
        current = read_sidecar(engine_file)
    except InputFileError:
        return False, "the sidecar is unreadable"
    if current is None:
        return False, "the engine has no sidecar"
    have = build_key(current)
    for key, want in wanted_key.items():
        if have.get(key) != want:
            return False, f"{key.replace('_', ' ')} changed"
    recorded = current.get("engine") or {}
    size = engine_file.stat().st_size
    if recorded.get("size_bytes") != size or recorded.get("sha256") != sha256_file(engine_file):
        return False, "the engine file differs from the one the sidecar describes"
    return True, ""
