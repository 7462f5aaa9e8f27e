"""The output-path check every command runs before its work (issue 12, items 5 and 6).

A benchmark of minutes, a calibration or a build must not end in "cannot write --out": each
output path is checked first (:func:`orinbench._io.check_output_path`: not a folder, its folder
writable, not one of the command's inputs), and no two outputs may be the same file. The inputs
are every other path the command was given: each argument of the parsed command line that is a
``Path`` (or a list of them) and not named as an output.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from .._io import check_output_path
from ..errors import UsageError

#: values that mean "standard output", never a file
_STDOUT = ("-",)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _paths(value: object) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Path)]
    return []


def check_outputs(
    args: argparse.Namespace,
    outputs: Iterable[str],
    *,
    folders: Iterable[str] = (),
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """Refuse (exit 2, one line) any output of ``args`` that cannot or must not be written.

    ``outputs`` and ``folders`` name attributes of ``args`` (``"out"``, ``"engine_out"``); a
    ``None`` or ``-`` value is skipped. ``folders`` are output folders. ``inputs`` adds paths
    that are not arguments (a default derived from one, say).
    """
    out_names = [n for n in outputs if getattr(args, n, None) is not None]
    folder_names = [n for n in folders if getattr(args, n, None) is not None]
    named = set(outputs) | set(folders)
    given_inputs: list[str | os.PathLike[str]] = [p for p in inputs if p is not None]
    for dest, value in sorted(vars(args).items()):
        if dest not in named:
            given_inputs.extend(_paths(value))
    seen: dict[Path, str] = {}
    for dest, is_folder in [(n, False) for n in out_names] + [(n, True) for n in folder_names]:
        value = getattr(args, dest)
        if str(value) in _STDOUT:
            continue
        flag = _flag(dest)
        p = check_output_path(value, inputs=given_inputs, flag=flag, folder=is_folder)
        key = Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()
        if key in seen:
            raise UsageError(
                f"{flag} and {seen[key]} name the same file {p}",
                fix="give each output its own path",
            )
        seen[key] = flag
