"""Load and save results. Saving is atomic; loading upgrades old files and refuses newer ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._io import atomic_write_json, finite_or_null, require_file
from ..errors import ResultFormatError
from .schema import SCHEMA_VERSION, Result
from .upgrade import upgrade


def save_result(result: Result, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` atomically. A non-finite number (a NaN statistic, say) is stored as
    ``null``: JSON has no NaN, and a result read back with one must still save."""
    return atomic_write_json(path, finite_or_null(result.to_dict()))


def result_from_dict(d: Any, *, source: str = "<dict>") -> Result:
    if not isinstance(d, dict) or ("environment" not in d and "schema_version" not in d):
        raise ResultFormatError(
            f"{source} is not an orinbench result",
            why="it lacks 'schema_version' and 'environment'",
            fix="pass a file written by 'orinbench bench --out' or 'orinbench run --out'",
        )
    version = d.get("schema_version", 0)
    if not isinstance(version, int) or version < 0:
        raise ResultFormatError(
            f"{source} has an invalid schema_version {version!r}",
            fix="regenerate the result with 'orinbench bench --out'",
        )
    if version > SCHEMA_VERSION:
        raise ResultFormatError(
            f"{source} uses result schema v{version}, newer than this orinbench understands "
            f"(v{SCHEMA_VERSION})",
            fix="upgrade orinbench (pip install -U orinbench) to read it",
        )
    try:
        return Result.from_dict(upgrade(d))
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFormatError(
            f"{source} is a corrupt orinbench result",
            why=f"{type(exc).__name__}: {exc}",
            fix="regenerate it with 'orinbench bench --out'",
        ) from exc


def load_result(path: str | os.PathLike[str]) -> Result:
    p = require_file(path, what="result file")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultFormatError(f"{p} is not a JSON text file", fix="pass a result JSON") from exc
    except json.JSONDecodeError as exc:
        raise ResultFormatError(
            f"{p} is not valid JSON",
            why=f"{exc.msg} at line {exc.lineno} column {exc.colno}",
            fix="regenerate it with 'orinbench bench --out' (was the file truncated?)",
        ) from exc
    return result_from_dict(d, source=str(p))
