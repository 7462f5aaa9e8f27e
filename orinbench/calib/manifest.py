"""``manifest.toml``: where a calibration set came from and how it was made.

The manifest is optional. Its keys (all optional)::

    source = "nuScenes v1.0-trainval, scenes 0001-0040, CAM_* keyframes"
    preprocessing = "resize 704x256, ImageNet mean/std, CHW, float32"
    sample_count = 16          # checked against the number of .npz files
    seed = 0                   # seed of the sampling (or of the generator)

Other keys are kept as they are (``Manifest.extra``) so that teams can record more.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..errors import CalibrationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MANIFEST_NAME = "manifest.toml"

_STR_KEYS = ("source", "preprocessing")
_INT_KEYS = ("sample_count", "seed")


@dataclass(frozen=True)
class Manifest:
    """The documented keys of a calibration set's ``manifest.toml``, and any others in ``extra``."""

    source: str = ""
    preprocessing: str = ""
    sample_count: int | None = None
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "preprocessing": self.preprocessing}
        if self.sample_count is not None:
            d["sample_count"] = self.sample_count
        if self.seed is not None:
            d["seed"] = self.seed
        d.update(self.extra)
        return d

    def to_toml(self) -> str:
        """TOML text of the manifest; ``extra`` may hold strings, numbers and booleans only."""
        lines = ["# orinbench calibration set manifest (docs/calibration.md)"]
        for key, value in self.to_dict().items():
            lines.append(f"{_toml_key(key)} = {_toml_value(key, value)}")
        return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    raise ValueError(f"manifest key {key!r}: cannot write {type(value).__name__} values")


def parse_manifest(text: str, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest text; a wrong type for a documented key is a one-line error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(
            f"{source} is not valid TOML", why=str(exc), fix="fix the file or delete it"
        ) from exc
    for key in _STR_KEYS:
        if key in data and not isinstance(data[key], str):
            raise CalibrationError(
                f"{source}: '{key}' must be a string, not {type(data[key]).__name__}",
                fix=f'write it as {key} = "..."',
            )
    for key in _INT_KEYS:
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise CalibrationError(
                f"{source}: '{key}' must be an integer, not {type(value).__name__}",
                fix=f"write it as {key} = 16",
            )
    if isinstance(data.get("sample_count"), int) and data["sample_count"] < 0:
        raise CalibrationError(f"{source}: 'sample_count' is negative", fix="give the real count")
    return Manifest(
        source=str(data.get("source", "")),
        preprocessing=str(data.get("preprocessing", "")),
        sample_count=data.get("sample_count"),
        seed=data.get("seed"),
        extra={k: v for k, v in data.items() if k not in _STR_KEYS + _INT_KEYS},
    )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read {p}", why=str(exc), fix="check the file") from exc
    return parse_manifest(text, source=str(p))


def write_manifest(path: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``manifest`` as TOML, atomically."""
    return atomic_write_text(path, manifest.to_toml())
