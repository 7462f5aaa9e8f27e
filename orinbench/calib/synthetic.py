"""Synthetic calibration sets: camera-like images for models without real data at hand.

A synthetic set is no substitute for real calibration data (use nuScenes frames through the same
preprocessing as in deployment); it exists so that the bundled sample model, the tests and the
benchmarks have a calibration set with the statistics of preprocessed camera images:

* image inputs (a float input whose last three axes are ``3 x H x W``) get per camera a sky-to-road
  vertical gradient, a horizon, a few box-shaped "objects" and pixel noise, drawn as 8-bit RGB and
  normalised with the ImageNet mean and standard deviation (what BEVDet/BEVFusion do);
* other float inputs get standard-normal values, integer inputs zeros, boolean inputs False.

A dynamic dimension is never invented: it takes its size from ``shapes`` (``--shape``), and
without one the set is refused with the same message as ``orinbench bench``.

Being drawn from 8-bit pixels, the values take 256 levels per channel and compress well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CalibrationError
from ..model.feeds import check_feed_fits
from ..model.shapes import format_shape, resolve_input_shapes
from ..results.schema import TensorSpec
from .dataset import Feed, write_sample
from .manifest import MANIFEST_NAME, Manifest, write_manifest

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = (
    "synthetic 8-bit RGB camera images (sky/road gradient, horizon, box objects, noise), "
    "x/255 normalised with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), CHW"
)


def _camera(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One H x W x 3 uint8 image."""
    horizon = int(h * rng.uniform(0.35, 0.55))
    rows = np.arange(h, dtype=np.float64)[:, None]
    sky = np.array(rng.uniform([90, 120, 170], [150, 180, 235]))
    road = np.array(rng.uniform([60, 60, 60], [120, 115, 110]))
    t_sky = np.clip(rows / max(horizon, 1), 0, 1)
    t_road = np.clip((rows - horizon) / max(h - horizon, 1), 0, 1)
    img = np.where(
        (rows < horizon)[..., None],
        sky * (1 - 0.3 * t_sky[..., None]),
        road * (0.8 + 0.4 * t_road[..., None]),
    )
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(int(rng.integers(2, 7))):  # vehicles, pedestrians, poles: flat-coloured boxes
        bh = int(rng.integers(max(2, h // 16), max(3, h // 3)))
        bw = int(rng.integers(max(2, w // 32), max(3, w // 5)))
        y = int(np.clip(horizon - bh // 2 + rng.integers(-h // 10, h // 8 + 1), 0, h - bh))
        x = int(rng.integers(0, max(1, w - bw)))
        img[y : y + bh, x : x + bw] = rng.uniform(10, 245, size=3)
    img += rng.normal(0.0, 2.0, size=img.shape)
    pixels: np.ndarray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return pixels


def synthetic_images(
    shape: Sequence[int], rng: np.random.Generator, dtype: str = "float32"
) -> np.ndarray:
    """A normalised image tensor of ``shape`` (leading axes any, last three ``3 x H x W``)."""
    *lead, c, h, w = shape
    if c != 3:
        raise ValueError("image tensors have 3 channels")
    count = int(np.prod(lead)) if lead else 1
    mean = np.array(IMAGENET_MEAN)[:, None, None]
    std = np.array(IMAGENET_STD)[:, None, None]
    out = np.empty((count, 3, h, w), dtype=dtype)
    for i in range(count):
        chw = _camera(rng, h, w).transpose(2, 0, 1) / 255.0
        out[i] = ((chw - mean) / std).astype(dtype)
    return out.reshape(shape)


def _is_image(spec: TensorSpec, shape: Sequence[int]) -> bool:
    return spec.dtype.startswith("float") and len(shape) >= 3 and shape[-3] == 3


def synthetic_sample(
    inputs: Sequence[TensorSpec],
    rng: np.random.Generator,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Feed:
    """One sample for ``inputs``. ``shapes`` sizes the dynamic dimensions (as ``--shape``);
    a dynamic dimension without a size raises :class:`~orinbench.errors.ShapeError`."""
    resolved = resolve_input_shapes(inputs, shapes or {})
    feed: Feed = {}
    for spec in inputs:
        shape = list(resolved[spec.name])
        if _is_image(spec, shape):
            feed[spec.name] = synthetic_images(shape, rng, spec.dtype)
        elif spec.dtype.startswith("float"):
            feed[spec.name] = np.asarray(rng.standard_normal(shape), dtype=spec.dtype)
        elif spec.dtype == "bool":
            feed[spec.name] = np.zeros(shape, dtype=bool)
        else:
            try:
                feed[spec.name] = np.zeros(shape, dtype=spec.dtype)
            except TypeError as exc:
                raise CalibrationError(
                    f"cannot make synthetic data for input '{spec.name}' of type {spec.dtype}",
                    fix="provide real calibration data",
                ) from exc
    return feed


def write_synthetic_dataset(
    folder: str | os.PathLike[str],
    *,
    inputs: Sequence[TensorSpec],
    count: int,
    seed: int = 0,
    source: str = "synthetic",
    extra: Mapping[str, Any] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """Write ``count`` synthetic samples (``0000.npz`` ...) and a manifest into ``folder``.

    ``shapes`` sizes the model's dynamic dimensions (``--shape``); every dynamic dimension needs
    one, and a sample that would not fit in the free memory is refused, both before anything is
    written. ``extra`` adds keys (strings, numbers, booleans) to the manifest, which also records
    the shapes used.
    """
    if count < 1:
        raise CalibrationError(f"sample count must be at least 1, not {count}")
    resolved = resolve_input_shapes(inputs, shapes or {})
    check_feed_fits(inputs, resolved)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = max(4, len(str(count - 1)))
    for i in range(count):
        write_sample(out / f"{i:0{width}d}.npz", synthetic_sample(inputs, rng, shapes=resolved))
    write_manifest(
        out / MANIFEST_NAME,
        Manifest(
            source=source,
            preprocessing=PREPROCESSING,
            sample_count=count,
            seed=seed,
            extra={
                "shapes": " ".join(f"{n}:{format_shape(d)}" for n, d in resolved.items()),
                **dict(extra or {}),
            },
        ),
    )
    return out
