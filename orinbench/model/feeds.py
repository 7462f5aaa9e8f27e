"""Input data for a run: seeded random tensors, or arrays from a user's ``.npz`` file."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from .._io import require_file
from ..errors import InputFileError, ShapeError
from ..results.schema import TensorSpec
from .shapes import UNKNOWN_RANK, format_shape

#: random floats are standard normal times this: small enough that no layer saturates or
#: overflows in FP16, large enough that values are not all rounded to the same number
FLOAT_SCALE = 0.5
#: random integers are drawn from [0, INT_HIGH): many integer inputs are indices or token ids
#: into something small, and 0..3 is valid for nearly all of them
INT_HIGH = 4


def _shape_for(spec: TensorSpec, shapes: Mapping[str, Sequence[int]] | None) -> tuple[int, ...]:
    if shapes is not None and spec.name in shapes:
        return tuple(int(d) for d in shapes[spec.name])
    if spec.is_static:
        return tuple(int(d) for d in spec.shape)
    raise ShapeError(
        f"no shape for input {spec.name!r} ({format_shape(spec.shape)})",
        why="it has dynamic dimensions",
        fix=f"pass --shape {spec.name}:{format_shape(spec.shape)} with the <names> filled in",
    )


def _numpy_dtype(spec: TensorSpec) -> np.dtype:
    try:
        return np.dtype(spec.dtype)
    except TypeError as exc:
        raise ShapeError(
            f"input {spec.name!r} has dtype {spec.dtype}, which numpy cannot hold",
            fix="pass real input data with --inputs FILE.npz",
        ) from exc


def random_feed(
    inputs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]] | None, *, seed: int
) -> dict[str, np.ndarray]:
    """Seeded random data for every input, in model input order.

    Floats are standard normal × :data:`FLOAT_SCALE`; integers uniform in ``[0, INT_HIGH)``;
    booleans fair coin flips. ``shapes`` (from :func:`resolve_input_shapes`) gives each input's
    shape; a static input may be left out. The same seed gives the same arrays.
    """
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        shape = _shape_for(spec, shapes)
        dtype = _numpy_dtype(spec)
        if dtype.kind == "f":
            arr = (rng.standard_normal(shape, dtype=np.float32) * FLOAT_SCALE).astype(dtype)
        elif dtype.kind in "iu":
            arr = rng.integers(0, INT_HIGH, size=shape, dtype=np.int64).astype(dtype)
        elif dtype.kind == "b":
            arr = rng.integers(0, 2, size=shape, dtype=np.int8).astype(bool)
        else:
            raise ShapeError(
                f"cannot make random data for input {spec.name!r} of dtype {spec.dtype}",
                why="only float, integer and bool inputs can be generated",
                fix="pass real input data with --inputs FILE.npz",
            )
        feed[spec.name] = arr
    return feed


def _matches(spec: TensorSpec, shape: tuple[int, ...]) -> bool:
    if spec.shape == (UNKNOWN_RANK,):
        return True
    if len(spec.shape) != len(shape):
        return False
    return all(not isinstance(w, int) or w == g for w, g in zip(spec.shape, shape, strict=True))


def load_feed_npz(
    path: str | os.PathLike[str],
    inputs: Sequence[TensorSpec],
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, np.ndarray]:
    """Load model inputs from an ``.npz`` file, one array per input, keyed by input name.

    Every input must be present, no other key may be, and each array must have the input's dtype
    and shape: exactly ``shapes[name]`` where given, else one that fits the model's static dims.
    Errors are one line naming the key.
    """
    p = require_file(path, what="input .npz file")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputFileError(
            f"cannot read input data {p}",
            why=f"not a valid .npz file ({str(exc).splitlines()[0] if str(exc) else exc!r})",
            fix="save it with numpy.savez(path, **{input_name: array})",
        ) from exc
    names = [spec.name for spec in inputs]
    for key in arrays:
        if key not in names:
            raise InputFileError(
                f"{p}: key {key!r} is not a model input",
                why=f"the inputs are {', '.join(map(repr, names))}",
                fix="rename or remove that array",
            )
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        if spec.name not in arrays:
            raise InputFileError(
                f"{p}: key {spec.name!r} is missing",
                why="every model input needs an array",
                fix=f"add an array named {spec.name!r} ({spec.dtype}, {format_shape(spec.shape)})",
            )
        arr = arrays[spec.name]
        want = _numpy_dtype(spec)
        if arr.dtype != want:
            raise InputFileError(
                f"{p}: key {spec.name!r} has dtype {arr.dtype}",
                why=f"the model input wants {want}",
                fix=f"save it as arr.astype('{want}')",
            )
        shape = tuple(int(d) for d in arr.shape)
        if shapes is not None and spec.name in shapes:
            expected = tuple(int(d) for d in shapes[spec.name])
            ok = shape == expected
            wanted = format_shape(expected)
        else:
            ok = _matches(spec, shape)
            wanted = format_shape(spec.shape)
        if not ok:
            raise InputFileError(
                f"{p}: key {spec.name!r} has shape {format_shape(shape)}",
                why=f"the input needs {wanted}",
                fix="save an array of that shape, or change --shape",
            )
        feed[spec.name] = arr
    return feed
