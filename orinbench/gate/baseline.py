"""Baselines on disk: one result per device / software / power mode / backend+precision / model.

Layout under the baseline folder (docs/gate.md)::

    <dir>/<device>/<software>/<power-mode>/<backend>-<precision>/<model>--<shapes>.json

* ``device``: the device fingerprint's ``module`` (or ``model``), else ``unknown-device``;
* ``software``: ``jp<jetpack>-trt<tensorrt>``, a missing part written ``unknown``
  (``jp6.0-trt8.6.2``, ``jpunknown-trtunknown`` off Jetson);
* ``power-mode``: the nvpmodel mode, else ``unknown-power-mode``;
* ``backend-precision``: e.g. ``tensorrt-fp16``;
* ``model``: the model's name, else the first 12 hex digits of its sha256, else ``unknown-model``;
* ``shapes``: the input shapes (:func:`orinbench.results.comparable.shape_tag`: ``1x3x320x320``,
  or ``img-1x6x3x256x704_pts-1x40000x5`` for several inputs), left out with its ``--`` when the
  result does not know them. Baselines recorded before the shapes were part of the key live at
  ``<model>.json``; :func:`find_baseline` falls back to that file, and the gate then compares
  the shapes stored inside it (a different shape is incomparable, exit 3).

Every part is slugified: lower case, runs of characters outside ``[a-z0-9._-]`` become ``-``.
Replacing a baseline keeps the previous file beside it as ``<model>.<UTC timestamp>.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes
from ..errors import BaselineExistsError, ImpreciseBaselineError, InputFileError
from ..results.comparable import shape_tag
from ..results.io import load_result, save_result
from ..results.schema import Result
from .precision import baseline_precision, imprecise

_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")


def slugify(text: Any, *, fallback: str) -> str:
    """A path-safe lower-case name for ``text``; ``fallback`` when nothing usable is left."""
    if text is None:
        return fallback
    slug = _SLUG_BAD.sub("-", str(text).strip().lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")
    slug = re.sub(r"\.{2,}", ".", slug)  # never '..': the key must stay inside the folder
    return slug or fallback


def baseline_key(result: Result) -> tuple[str, str, str, str, str]:
    """The five path parts under which ``result`` is stored (see the module docstring).

    The last one is the file's stem: model name and input shapes."""
    dev = dict(result.environment.device or {})
    device = slugify(dev.get("module", dev.get("model")), fallback="unknown-device")
    jp = slugify(dev.get("jetpack"), fallback="unknown")
    trt = slugify(dev.get("tensorrt"), fallback="unknown")
    software = f"jp{jp}-trt{trt}"
    power = slugify(dev.get("power_mode"), fallback="unknown-power-mode")
    backend = result.environment.backend or result.config.backend
    run = slugify(
        f"{backend or 'unknown'}-{result.config.precision or 'unknown'}", fallback="unknown"
    )
    sha = (result.model.sha256 or "")[:12] or None
    model = slugify(result.model.name or sha, fallback="unknown-model")
    tag = shape_tag(result.config.shapes)
    return device, software, power, run, f"{model}--{tag}" if tag else model


def baseline_path(result: Result, to_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`record_baseline` stores ``result`` under ``to_dir``."""
    *folders, stem = baseline_key(result)
    return Path(to_dir).joinpath(*folders, f"{stem}.json")


def _legacy_path(result: Result, to_dir: str | os.PathLike[str]) -> Path:
    """Where a baseline was stored before the input shapes were part of the key."""
    *folders, stem = baseline_key(result)
    return Path(to_dir).joinpath(*folders, f"{stem.split('--', 1)[0]}.json")


def record_baseline(
    result: Result | str | os.PathLike[str],
    *,
    to_dir: str | os.PathLike[str],
    replace: bool = False,
    tolerances: Mapping[str, float] | None = None,
    allow_imprecise: bool = False,
) -> Path:
    """Store ``result`` (or the result file at that path) as the baseline for its key.

    Refuses (:class:`ImpreciseBaselineError`, exit 2) a result whose gated percentiles are too
    imprecise for their tolerances (``tolerances`` as in :func:`compare`; see
    :mod:`orinbench.gate.precision`) unless ``allow_imprecise``: a noisy baseline makes every
    later gate fail unchanged runs by chance. Refuses to overwrite an existing baseline unless
    ``replace``; when replacing, the previous file is first copied to
    ``<model>.<UTC timestamp>.json`` beside it. Both writes are atomic, so the baseline path
    always holds a complete file. Returns the path written.
    """
    res = result if isinstance(result, Result) else load_result(result)
    if not allow_imprecise:
        bad = imprecise(baseline_precision(res, tolerances=tolerances))
        if bad:
            rule = min(bad, key=lambda e: (e.limit, -e.percentile)).stop_rule()
            raise ImpreciseBaselineError(
                "the result is too imprecise to be a baseline",
                why="; ".join(e.describe() for e in bad)
                + " (a run as fast as it would then fail the gate by chance)",
                fix="record a longer run with the clocks locked, e.g. 'orinbench bench MODEL "
                f"--until-ci {rule} --max-seconds 300', "
                "or pass --allow-imprecise",
            )
    path = baseline_path(res, to_dir)
    if path.exists():
        if not replace:
            raise BaselineExistsError(
                f"a baseline already exists at {path}",
                fix="pass --replace to replace it (the old one is kept beside it, timestamped)",
            )
        _keep_previous(path)
    save_result(res, path)
    return path


def find_baseline(result: Result, baseline_dir: str | os.PathLike[str]) -> Path | None:
    """The baseline recorded for ``result``'s key under ``baseline_dir``, or None.

    Falls back to a baseline recorded without shapes in its key (``<model>.json``); the gate
    then checks the shapes stored in it, so a baseline of other shapes is never used silently.
    """
    path = baseline_path(result, baseline_dir)
    if path.is_file():
        return path
    legacy = _legacy_path(result, baseline_dir)
    return legacy if legacy != path and legacy.is_file() else None


def _keep_previous(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = path.name[: -len(".json")]
    backup = path.with_name(f"{stem}.{stamp}.json")
    n = 1
    while backup.exists():  # two replacements within one second
        backup = path.with_name(f"{stem}.{stamp}-{n}.json")
        n += 1
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(
            f"cannot read the existing baseline {path}",
            why=exc.strerror or str(exc),
            fix="check its permissions",
        ) from exc
    return atomic_write_bytes(backup, data)
