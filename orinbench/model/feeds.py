"""Input data for a run: seeded random tensors, or arrays from a user's ``.npz`` file."""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from .._io import require_file
from ..errors import InputFileError, ShapeError
from ..results.schema import QualityWarning, TensorSpec
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


def available_memory() -> int | None:
    """Bytes of memory the system can hand out now without swapping; None where unknown.

    Linux's ``MemAvailable`` (on a Jetson the GPU shares this memory), else the free pages.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def feed_bytes(inputs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]] | None) -> int:
    """Bytes :func:`random_feed` holds at its peak: every array, plus the largest temporary
    (integers are drawn as int64, floats as float32 and booleans as int8, then cast to the
    input's dtype).

    Python integers: a shape whose element count overflows int64 still gives a number.
    """
    total = 0
    temp = 0
    for spec in inputs:
        count = math.prod(_shape_for(spec, shapes))
        dtype = _numpy_dtype(spec)
        total += count * dtype.itemsize
        drawn = {"f": np.dtype(np.float32), "i": np.dtype(np.int64), "u": np.dtype(np.int64)}
        drawn_as = drawn.get(dtype.kind, np.dtype(np.int8))
        if drawn_as != dtype:
            temp = max(temp, count * drawn_as.itemsize)
    return total + temp


def check_feed_fits(
    inputs: Sequence[TensorSpec],
    shapes: Mapping[str, Sequence[int]] | None,
    *,
    available: int | None = None,
) -> None:
    """Refuse (before anything is allocated) inputs larger than the memory free now.

    ``available`` defaults to :func:`available_memory`; where that is unknown nothing is checked.
    """
    free = available if available is not None else available_memory()
    if free is None:
        return
    need = feed_bytes(inputs, shapes)
    if need <= free:
        return
    big = max(inputs, key=lambda s: math.prod(_shape_for(s, shapes)))
    raise ShapeError(
        f"the generated inputs would need {_gib(need)}, more than the {_gib(free)} of memory free",
        why=f"input {big.name!r} alone is {format_shape(_shape_for(big, shapes))} ({big.dtype})",
        fix="pass the --shape the model runs at (e.g. images:1x3x224x224)",
    )


def random_feed(
    inputs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]] | None, *, seed: int
) -> dict[str, np.ndarray]:
    """Seeded random data for every input, in model input order.

    Floats are standard normal × :data:`FLOAT_SCALE`; integers uniform in ``[0, INT_HIGH)``;
    booleans fair coin flips. ``shapes`` (from :func:`resolve_input_shapes`) gives each input's
    shape (``()`` for a rank-0 input); a static input may be left out. The same seed gives the
    same arrays. Inputs that would not fit in the free memory are refused before any allocation
    (:func:`check_feed_fits`).
    """
    check_feed_fits(inputs, shapes)
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        shape = _shape_for(spec, shapes)
        dtype = _numpy_dtype(spec)
        arr: np.ndarray
        if dtype.kind == "f":
            arr = rng.standard_normal(shape, dtype=np.float32)
            arr *= FLOAT_SCALE  # in place: the same values as a product, one buffer fewer
            arr = arr.astype(dtype, copy=False)
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
        # numpy hands back a scalar, not an array, for some rank-0 operations
        feed[spec.name] = np.asarray(arr)
    return feed


def feed_warnings(feed: Mapping[str, np.ndarray], *, source: str) -> tuple[QualityWarning, ...]:
    """Warnings about the input data itself: float inputs holding NaN or Inf.

    Timings on such data need not match real data (some kernels take other paths for NaN/Inf,
    and the outputs are meaningless), so a result measured on them says so.
    """
    found: list[QualityWarning] = []
    for name, arr in feed.items():
        a = np.asarray(arr)
        if a.dtype.kind not in "fc" or a.size == 0:
            continue
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            share = "all of them" if bad == a.size else f"{bad / a.size:.1%}"
            found.append(
                QualityWarning(
                    "nonfinite-inputs",
                    f"input {name!r} from {source} holds {bad} NaN/Inf values of {a.size} "
                    f"({share}); timings on such data need not match real inputs and the "
                    "outputs are meaningless; benchmark real (finite) data",
                )
            )
    return tuple(found)


def _matches(spec: TensorSpec, shape: tuple[int, ...]) -> bool:
    if spec.shape == (UNKNOWN_RANK,):
        return True
    if len(spec.shape) != len(shape):
        return False
    return all(not isinstance(w, int) or w == g for w, g in zip(spec.shape, shape, strict=True))


def not_npz_reason(path: str | os.PathLike[str]) -> str | None:
    """Why the file at ``path`` cannot be an ``.npz`` at all, from its first bytes, or None.

    numpy reads any file that is neither a zip archive nor an ``.npy`` as a pickle, so a text
    file fails with "Cannot load file containing pickled data": true for numpy, misleading here.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        return None
    if not head:
        return "the file is empty"
    return f"it is not a zip archive, as an .npz is (it starts with {head!r})"


def npz_array_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """The shape of each array in the ``.npz`` at ``path``; ``{}`` when it cannot be read (the
    loader that reads it for real reports why, with the key)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: tuple(int(d) for d in npz[k].shape) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return {}


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
            why="not a valid .npz file ("
            + (not_npz_reason(p) or (str(exc).splitlines()[0] if str(exc) else repr(exc)))
            + ")",
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
        if 0 in shape:
            raise InputFileError(
                f"{p}: key {spec.name!r} has shape {format_shape(shape)}, an empty tensor",
                why="a zero dimension runs no work, so nothing would be measured",
                fix=f"save an array of the model's shape ({format_shape(spec.shape)})",
            )
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
