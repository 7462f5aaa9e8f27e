"""Calibration datasets: a folder of ``.npz`` samples, or a data-loader function, checked first.

Folder format (docs/calibration.md)::

    calib/
      manifest.toml      optional: source, preprocessing, sample_count, seed
      0000.npz           one sample per file; keys = the model's input names
      0001.npz
      ...

Samples are taken in file-name order. :func:`open_dataset` validates every sample it will use
(names, shapes and dtypes against the model's inputs, NaN/Inf, an empty folder, a manifest whose
sample count disagrees, and, for calibration, samples of one input at different shapes) before any
calibration work starts, and the error names the first bad file and key. Validated samples are
kept in memory up to ``memory_budget`` bytes so that they are read once; a larger set is read
again (and checked again) when iterated.
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_open
from ..errors import CalibrationError
from ..model.feeds import not_npz_reason
from ..results.schema import TensorSpec
from .loader import LoaderSpec, is_loader_spec, iterate_loader, load_loader, parse_loader_spec
from .manifest import MANIFEST_NAME, Manifest, read_manifest
from .specs import rank_known, shape_text

#: validated samples up to this many bytes stay in memory (the rest is re-read when iterated)
DEFAULT_MEMORY_BUDGET = 1 << 30

Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class Sample:
    """One validated sample. ``origin`` names it in messages (a file, or a loader and index)."""

    index: int
    origin: str
    feed: Mapping[str, np.ndarray]


def _fix_for(kind: str) -> str:
    if kind == "loader":
        return "make the loader yield arrays that match the model (see 'orinbench inspect MODEL')"
    return "regenerate the sample to match the model's inputs (see 'orinbench inspect MODEL')"


def check_sample(
    item: Any, inputs: Sequence[TensorSpec], *, origin: str, kind: str = "folder"
) -> Feed:
    """Check one sample against the model's inputs and return it as a name -> array dict.

    Checks, in the model's input order: every input is present, no key is unknown, dtype equal,
    rank equal and every static dimension equal, and for float inputs no NaN or Inf.
    """
    fix = _fix_for(kind)
    if not isinstance(item, Mapping):
        raise CalibrationError(
            f"calibration sample {origin} is a {type(item).__name__}, not a dict of arrays",
            fix="yield dicts that map each input name to a numpy array",
        )
    names = [s.name for s in inputs]
    for key in item:
        if key not in names:
            raise CalibrationError(
                f"calibration sample {origin} has key '{key}', which is not an input of the model",
                why=f"the model's inputs are {', '.join(names)}",
                fix="name the arrays after the model's inputs",
            )
    feed: Feed = {}
    for spec in inputs:
        if spec.name not in item:
            raise CalibrationError(
                f"calibration sample {origin} lacks input '{spec.name}'",
                why=f"it holds {', '.join(map(str, item)) or 'nothing'}; the model's inputs are "
                f"{', '.join(names)}",
                fix=fix,
            )
        where = f"calibration sample {origin} key '{spec.name}'"
        value = item[spec.name]
        if not isinstance(value, np.ndarray):
            try:
                value = np.asarray(value)
            except Exception as exc:
                raise CalibrationError(
                    f"{where} is not an array", why=type(value).__name__, fix=fix
                ) from exc
        if str(value.dtype) != spec.dtype:
            raise CalibrationError(
                f"{where} has dtype {value.dtype}, the model expects {spec.dtype}", fix=fix
            )
        shape_bad = rank_known(spec) and (
            len(value.shape) != len(spec.shape)
            or any(
                isinstance(d, int) and d >= 0 and d != s
                for d, s in zip(spec.shape, value.shape, strict=False)
            )
        )
        if shape_bad:
            raise CalibrationError(
                f"{where} has shape {shape_text(value.shape)}, the model expects "
                f"{shape_text(spec.shape)}",
                fix=fix,
            )
        if value.dtype.kind in "fc" and value.size and not np.isfinite(value).all():
            nan = int(np.isnan(value).sum())
            inf = int(value.size - nan - np.isfinite(value).sum())
            first = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise CalibrationError(
                f"{where} holds {nan} NaN and {inf} Inf values (first at index {first})",
                fix="clean the data: calibration ranges computed from NaN/Inf are meaningless",
            )
        feed[spec.name] = value
    return feed


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        why = not_npz_reason(path) or (
            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        )
        raise CalibrationError(
            f"calibration sample {path} is not a readable .npz file",
            why=why,
            fix="regenerate it with numpy.savez (no object arrays)",
        ) from exc


def _folder_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise CalibrationError(
            f"calibration data folder not found: {folder}", fix="check the --data path"
        )
    if not folder.is_dir():
        raise CalibrationError(
            f"calibration data {folder} is not a folder",
            fix="pass a folder of .npz files (one sample each), or FILE.py:function with "
            "--data-loader-script",
        )
    files = sorted(p for p in folder.iterdir() if p.suffix == ".npz" and p.is_file())
    if not files:
        raise CalibrationError(
            f"calibration data folder {folder} holds no .npz samples",
            fix="write one .npz per sample (keys = the model's input names) into it",
        )
    return files


class CalibrationDataset:
    """A validated calibration set; iterate it with :meth:`samples` or :meth:`feeds`.

    Build one with :func:`open_dataset`. ``count`` samples are used (after ``max_samples``).
    ``validate_s`` is the time the validation pass took, ``nbytes`` the size of the used samples.
    """

    def __init__(
        self,
        *,
        kind: str,
        source: str,
        inputs: Sequence[TensorSpec],
        count: int,
        nbytes: int,
        validate_s: float,
        manifest: Manifest | None,
        reader: Callable[[], Iterator[tuple[str, Any]]],
        cached: list[Sample] | None,
        mixed: CalibrationError | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        self.inputs: tuple[TensorSpec, ...] = tuple(inputs)
        self.count = count
        self.nbytes = nbytes
        self.validate_s = validate_s
        self.manifest = manifest
        self._reader = reader
        self._cached = cached
        #: the refusal for a set whose samples give one input two shapes (None: one shape each)
        self.mixed_shapes = mixed

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"CalibrationDataset({self.kind} {self.source!r}, {self.count} samples)"

    @property
    def in_memory(self) -> bool:
        return self._cached is not None

    def samples(self, max_samples: int | None = None) -> Iterator[Sample]:
        """Yield the validated samples in order (at most ``max_samples``)."""
        limit = self.count if max_samples is None else min(self.count, max_samples)
        if self._cached is not None:
            yield from self._cached[:limit]
            return
        index = 0
        if limit > 0:
            for origin, item in self._reader():
                feed = check_sample(item, self.inputs, origin=origin, kind=self.kind)
                yield Sample(index, origin, feed)
                index += 1
                if index >= limit:
                    break
        if index < limit:
            raise CalibrationError(
                f"calibration data {self.source} yielded {index} samples the second time it was "
                f"read, {limit} the first",
                fix="make the loader yield the same samples on every call",
            )

    def feeds(self, max_samples: int | None = None) -> Iterator[Feed]:
        """Yield the samples as name -> array dicts, ready for a runner's ``infer``."""
        for s in self.samples(max_samples):
            yield dict(s.feed)

    def check_inputs(self, inputs: Sequence[TensorSpec], *, what: str = "the model") -> None:
        """Raise unless this dataset (validated for ``self.inputs``) also fits ``inputs``."""
        mine = {s.name: s for s in self.inputs}
        theirs = {s.name: s for s in inputs}
        if set(mine) != set(theirs):
            raise CalibrationError(
                f"calibration data {self.source} was validated for inputs "
                f"{', '.join(sorted(mine))}, but {what} has {', '.join(sorted(theirs))}",
                fix="open the data for this model",
            )
        sample = next(iter(self.samples(1)), None)
        if sample is not None:
            check_sample(sample.feed, inputs, origin=sample.origin, kind=self.kind)


def mixed_shapes_error(
    name: str, shape: tuple[int, ...], origin: str, first: tuple[int, ...], first_origin: str
) -> CalibrationError:
    """The refusal of a calibration set whose samples give input ``name`` two shapes."""
    return CalibrationError(
        f"calibration sample {origin} key '{name}' has shape {shape_text(shape)}, but "
        f"{first_origin} has {shape_text(first)}",
        why="calibration collects each tensor's range over samples of one shape per input "
        "(ONNX Runtime and TensorRT stack them)",
        fix="resize the samples to one shape in preprocessing, or split the set by shape and "
        "calibrate with one part",
    )


def _pass(
    reader: Callable[[], Iterator[tuple[str, Any]]],
    inputs: Sequence[TensorSpec],
    *,
    kind: str,
    max_samples: int | None,
    memory_budget: int,
) -> tuple[int, int, list[Sample] | None, CalibrationError | None]:
    count = 0
    nbytes = 0
    kept: list[Sample] | None = []
    first: dict[str, tuple[tuple[int, ...], str]] = {}
    mixed: CalibrationError | None = None
    for origin, item in reader():
        feed = check_sample(item, inputs, origin=origin, kind=kind)
        if mixed is None:
            for name, arr in feed.items():
                shape = tuple(int(d) for d in arr.shape)
                seen, seen_at = first.setdefault(name, (shape, origin))
                if shape != seen:
                    mixed = mixed_shapes_error(name, shape, origin, seen, seen_at)
                    break
        size = sum(int(a.nbytes) for a in feed.values())
        nbytes += size
        if kept is not None:
            if nbytes <= memory_budget:
                kept.append(Sample(count, origin, feed))
            else:
                kept = None  # too large to keep: iteration reads (and checks) again
        count += 1
        if max_samples is not None and count >= max_samples:
            break
    return count, nbytes, kept, mixed


def open_dataset(
    data: str | os.PathLike[str] | CalibrationDataset,
    *,
    inputs: Sequence[TensorSpec],
    max_samples: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    one_shape: bool = True,
) -> CalibrationDataset:
    """Open and validate calibration data against the model's ``inputs``.

    ``data`` is a folder of ``.npz`` files, a ``FILE.py:function`` data-loader spec, or an already
    opened dataset (then only checked against ``inputs``). Raises :class:`CalibrationError` naming
    the first bad sample and key; an empty set is an error too. ``one_shape`` (the default, what
    calibration needs) also refuses a set whose samples give an input of the model two shapes;
    accuracy, which runs sample by sample, passes False.
    """
    if isinstance(data, CalibrationDataset):
        data.check_inputs(inputs)
        if one_shape and data.mixed_shapes is not None:
            raise data.mixed_shapes
        return data
    if max_samples is not None and max_samples < 1:
        raise CalibrationError(
            f"--max-samples must be at least 1, not {max_samples}", fix="pass a positive number"
        )
    text = os.fspath(data)
    manifest: Manifest | None = None
    started = time.perf_counter()
    if is_loader_spec(text) and not Path(text).is_dir():
        spec: LoaderSpec = parse_loader_spec(text)
        func = load_loader(spec)
        kind, source = "loader", str(spec)

        def reader() -> Iterator[tuple[str, Any]]:
            return iterate_loader(spec, func)

    else:
        folder = Path(text)
        files = _folder_files(folder)
        mpath = folder / MANIFEST_NAME
        if mpath.is_file():
            manifest = read_manifest(mpath)
            if manifest.sample_count is not None and manifest.sample_count != len(files):
                raise CalibrationError(
                    f"{mpath} says sample_count = {manifest.sample_count} but {folder} holds "
                    f"{len(files)} .npz files",
                    fix="copy the missing samples or correct sample_count",
                )
        use = files if max_samples is None else files[:max_samples]
        kind, source = "folder", str(folder)

        def reader() -> Iterator[tuple[str, Any]]:
            for f in use:
                yield str(f), _read_npz(f)

    count, nbytes, kept, mixed = _pass(
        reader, inputs, kind=kind, max_samples=max_samples, memory_budget=memory_budget
    )
    if count == 0:
        raise CalibrationError(
            f"calibration data {source} yielded no samples",
            fix="make the loader yield at least one dict of arrays",
        )
    if one_shape and mixed is not None:
        raise mixed
    return CalibrationDataset(
        kind=kind,
        source=source,
        inputs=inputs,
        count=count,
        nbytes=nbytes,
        validate_s=time.perf_counter() - started,
        manifest=manifest,
        reader=reader,
        cached=kept,
        mixed=mixed,
    )


def dataset_from_arrays(
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    inputs: Sequence[TensorSpec],
    source: str = "<memory>",
) -> CalibrationDataset:
    """A validated dataset from in-memory samples (for programs that already hold the data)."""
    started = time.perf_counter()
    kept = [
        Sample(i, f"{source} #{i}", check_sample(s, inputs, origin=f"{source} #{i}", kind="memory"))
        for i, s in enumerate(samples)
    ]
    if not kept:
        raise CalibrationError(
            f"calibration data {source} is empty", fix="pass at least one sample"
        )
    mixed: CalibrationError | None = None
    first = {name: (tuple(a.shape), kept[0].origin) for name, a in kept[0].feed.items()}
    for sample in kept[1:]:
        for name, arr in sample.feed.items():
            if mixed is None and tuple(arr.shape) != first[name][0]:
                mixed = mixed_shapes_error(name, tuple(arr.shape), sample.origin, *first[name])
    return CalibrationDataset(
        kind="memory",
        source=source,
        inputs=inputs,
        count=len(kept),
        nbytes=sum(int(a.nbytes) for s in kept for a in s.feed.values()),
        validate_s=time.perf_counter() - started,
        manifest=None,
        reader=lambda: iter((s.origin, s.feed) for s in kept),
        cached=kept,
        mixed=mixed,
    )


def write_sample(
    path: str | os.PathLike[str], feed: Mapping[str, np.ndarray], *, compress: bool = True
) -> Path:
    """Write one sample as ``.npz`` atomically (compressed by default)."""
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in feed.items()}
    with atomic_open(path, "wb") as fh:
        if compress:
            np.savez_compressed(fh, **arrays)
        else:
            np.savez(fh, **arrays)
    return Path(path)
