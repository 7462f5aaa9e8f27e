"""The data-loader hook: ``--data-loader-script FILE.py:function``.

For users who read nuScenes (or anything else) on the fly instead of writing .npz files. The
function is called with no arguments and must return an iterable (usually a generator) of dicts
that map each model input name to a numpy array. It may be called more than once (once to validate,
again to calibrate when the samples do not fit in memory), so it must yield the same samples each
time. Every failure inside the user's code becomes one :class:`CalibrationError` line naming the
script, the function and the sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CalibrationError

_SPEC_RE = re.compile(r"^(?P<file>.+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class LoaderSpec:
    """``FILE.py:function`` parsed."""

    file: Path
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.function}"


def is_loader_spec(text: str) -> bool:
    """Whether ``text`` has the ``FILE.py:function`` form."""
    return bool(_SPEC_RE.match(text))


def parse_loader_spec(text: str) -> LoaderSpec:
    m = _SPEC_RE.match(text.strip())
    if not m:
        raise CalibrationError(
            f"'{text}' is not a data-loader spec",
            why="it must have the form FILE.py:function",
            fix="pass e.g. --data-loader-script tools/nuscenes_calib.py:samples",
        )
    return LoaderSpec(file=Path(m.group("file")), function=m.group("func"))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def _script_dir_on_path(folder: Path) -> Iterator[None]:
    """Let the script import its sibling modules, as it could when run directly."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def load_loader(spec: LoaderSpec) -> Callable[[], Any]:
    """Import the script and return its function; a missing file or function is one line."""
    path = spec.file
    if not path.is_file():
        raise CalibrationError(
            f"data-loader script not found: {path}", fix="check the path before ':function'"
        )
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"_orinbench_loader_{digest}"
    mod_spec = importlib.util.spec_from_file_location(module_name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise CalibrationError(f"cannot import {path}", fix="pass a Python source file")
    module = importlib.util.module_from_spec(mod_spec)
    try:
        with _script_dir_on_path(path.resolve().parent):
            mod_spec.loader.exec_module(module)
    except Exception as exc:  # the user's script: any error is theirs to fix, in one line
        raise CalibrationError(
            f"data-loader script {path} failed while importing",
            why=_describe(exc),
            fix="run it with python to see the traceback",
        ) from exc
    func = getattr(module, spec.function, None)
    if func is None:
        raise CalibrationError(
            f"data-loader script {path} has no function '{spec.function}'",
            fix="name a function defined at the top level of the script",
        )
    if not callable(func):
        raise CalibrationError(
            f"'{spec.function}' in {path} is not a function",
            why=f"it is a {type(func).__name__}",
            fix="name a function that yields dicts of arrays",
        )
    return func  # type: ignore[no-any-return]


def iterate_loader(spec: LoaderSpec, func: Callable[[], Any]) -> Iterator[tuple[str, Any]]:
    """Yield ``(origin, item)`` from the user's function, turning its errors into one line."""
    with _script_dir_on_path(spec.file.resolve().parent):
        try:
            result = func()
        except Exception as exc:
            raise CalibrationError(
                f"data loader {spec} raised when called",
                why=_describe(exc),
                fix="fix the function (it is called with no arguments)",
            ) from exc
        try:
            iterator = iter(result)
        except TypeError as exc:
            raise CalibrationError(
                f"data loader {spec} returned a {type(result).__name__}, not an iterable",
                fix="make it yield dicts that map input names to numpy arrays",
            ) from exc
        index = 0
        try:
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                except Exception as exc:
                    raise CalibrationError(
                        f"data loader {spec} raised while producing sample #{index}",
                        why=_describe(exc),
                        fix="fix the loader; run it alone to see the traceback",
                    ) from exc
                yield f"{spec} sample #{index}", item
                index += 1
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()
