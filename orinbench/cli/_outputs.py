"""The output-path check every command runs before its work (issue 12, items 5 and 6).

A benchmark of minutes, a calibration or a build must not end in "cannot write --out": each
output path is checked first (:func:`orinbench._io.check_output_path`: not a folder, its folder
writable, not one of the command's inputs), and no two outputs may be the same file. The inputs
are every other path the command was given: each argument of the parsed command line that is a
``Path`` (or a list of them) and not named as an output, and what those arguments bring along:

* the files inside an input folder (``--data DIR``: a calibration sample, its manifest);
* the script of a ``FILE.py:function`` argument (``--data-loader-script``), which is a string;
* the external-data files an input ONNX model names (``model.onnx.data``).

The history database is an output too: ``--history PATH``, or ``$ORINBENCH_HISTORY`` when the
flag is absent, gets the same check, and an existing file there must be an SQLite file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from .._io import check_output_path, resolved_path, same_file
from ..errors import UsageError

#: values that mean "standard output", never a file
_STDOUT = ("-",)
#: the dest of the history database output
_HISTORY = "history"
#: how the environment variable is named in messages
_HISTORY_ENV_FLAG = "$ORINBENCH_HISTORY"


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _paths(value: object) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Path)]
    return []


def _abs(p: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p))))


def _script_of(value: object) -> Path | None:
    """The FILE.py of a ``FILE.py:function`` string argument, if that file exists."""
    if not isinstance(value, str) or ":" not in value:
        return None
    head, _, func = value.rpartition(":")
    if not head.endswith(".py") or not func:
        return None
    p = Path(os.path.expanduser(head))
    return p if p.is_file() else None


class _Inputs:
    """The inputs of one command line, and what they bring along, found on demand."""

    def __init__(self, args: argparse.Namespace, named: set[str], extra: list[Path]) -> None:
        self.paths: list[Path] = list(extra)
        self.scripts: list[tuple[Path, str]] = []
        for dest, value in sorted(vars(args).items()):
            if dest in named:
                continue
            self.paths.extend(_paths(value))
            script = _script_of(value)
            if script is not None:
                self.scripts.append((script, _flag(dest)))
        self._external: dict[Path, list[Path]] = {}

    def refuse(self, out: Path, flag: str) -> None:
        """Raise the one-line refusal if writing ``out`` would replace something an input holds."""
        for script, src_flag in self.scripts:
            if same_file(out, script):
                raise _refusal(out, flag, f"it is the script of {src_flag} {script}")
        # the checks below concern only a file that exists: a new one replaces nothing
        if not (out.exists() or out.is_symlink()) or out.is_dir():
            return
        # both the link itself (atomic writes replace it) and what it points to
        candidates = {resolved_path(out.parent) / out.name, resolved_path(out)}
        for src in self.paths:
            if not src.is_dir():
                continue
            folder = resolved_path(src)
            if any(c != folder and c.is_relative_to(folder) for c in candidates):
                raise _refusal(out, flag, f"it is a file inside the input folder {src}")
        for src in self.paths:
            if src.suffix.lower() != ".onnx" or not src.is_file():
                continue
            key = resolved_path(src)
            if key not in self._external:
                from ..model.load import external_data_files  # onnx only when needed

                self._external[key] = external_data_files(src)
            for data in self._external[key]:
                if same_file(out, data):
                    raise _refusal(
                        out, flag, f"it holds the external weights of the input model {src}"
                    )


def _refusal(out: Path, flag: str, why: str) -> UsageError:
    return UsageError(
        f"refusing to write {flag} {out}",
        why=f"{why} and would be replaced",
        fix=f"give {flag} a different path",
    )


def _env_history(args: argparse.Namespace) -> Path | None:
    """``$ORINBENCH_HISTORY`` when it is where this command appends its run, else None."""
    if getattr(args, _HISTORY, None) is not None or getattr(args, "no_history", False):
        return None
    from ..history.store import ENV_VAR, history_disabled

    env = os.environ.get(ENV_VAR, "").strip()
    if not env or history_disabled():
        return None
    return Path(os.path.expanduser(env))


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
    that are not arguments (a default derived from one, say). An output named ``history`` is
    the history database: ``$ORINBENCH_HISTORY`` stands for it when the flag is absent.
    """
    outputs = list(outputs)
    folders = list(folders)
    named = set(outputs) | set(folders)
    checks: list[tuple[str, object, bool]] = []
    for n in outputs:
        value = getattr(args, n, None)
        if value is not None:
            checks.append((_flag(n), value, False))
        elif n == _HISTORY:
            env = _env_history(args)
            if env is not None:
                checks.append((_HISTORY_ENV_FLAG, env, False))
    checks += [
        (_flag(n), getattr(args, n), True) for n in folders if getattr(args, n, None) is not None
    ]
    if not checks:
        return
    extra = [Path(os.fspath(p)) for p in inputs if p is not None and str(p) != ""]
    given = _Inputs(args, named, extra)
    plain_inputs = list(given.paths)
    seen: dict[Path, str] = {}
    for flag, value, is_folder in checks:
        if str(value) in _STDOUT:
            continue
        p = check_output_path(value, inputs=plain_inputs, flag=flag, folder=is_folder)
        if not is_folder:
            given.refuse(p, flag)
        if flag in (_flag(_HISTORY), _HISTORY_ENV_FLAG):
            from ..history.store import check_history_file

            check_history_file(p, flag=flag)
        key = resolved_path(p)
        if key in seen:
            raise UsageError(
                f"{flag} and {seen[key]} name the same file {p}",
                fix="give each output its own path",
            )
        seen[key] = flag
