"""Atomic file output, output-path checks and content hashing.

Results, caches, engines, sidecars and baselines are written to a temporary file in the target's
folder and renamed over it, so a crash or a Ctrl-C never leaves a half-written file behind.

* The file gets the mode ``open()`` would give it: an existing target keeps its mode, a new one
  gets ``0o666 & ~umask`` (``mkstemp`` alone would make every output 0600).
* The temporary file is named ``.NAME.ob<pid>.<random>.tmp``. A ``kill -9`` between create and
  rename leaves it behind; the next atomic write into that folder removes such leftovers once
  they are stale (:func:`sweep_stale_temp_files`): their writer's pid is dead and they are older
  than :data:`DEAD_WRITER_AGE_S`, or they are older than :data:`STALE_TEMP_AGE_S` whatever the pid
  (another pid namespace, a reused pid). A live writer's file is never touched.
* :func:`check_output_path` is what every command runs on each output path *before* its work:
  not a folder, not one of the command's inputs, its folder writable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import InputFileError, UsageError

_CHUNK = 1 << 20
#: a leftover temporary file older than this is stale whatever its writer pid says (seconds)
STALE_TEMP_AGE_S = 15 * 60.0
#: a leftover whose writer pid is dead is stale once older than this (seconds); the margin covers
#: a writer in another pid namespace that is between its last write and its rename
DEAD_WRITER_AGE_S = 60.0
# .NAME.ob<pid>.<mkstemp's 8 random characters>.tmp
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.ob(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
# the pattern before the pid was added: .NAME.<8 random>.tmp (swept by age, and only for NAME)
_LEGACY_TEMP = r"^\.{name}\.[a-z0-9_]{{8}}\.tmp$"


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _mode_for(target: Path) -> int:
    """The mode open(target, "w") would leave: the existing file's, else 0o666 minus umask."""
    with contextlib.suppress(OSError):
        st = target.stat()
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    return 0o666 & ~current_umask()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def sweep_stale_temp_files(
    folder: str | os.PathLike[str], *, name: str | None = None, now: float | None = None
) -> list[Path]:
    """Remove orinbench's stale temporary files in ``folder``; returns what was removed.

    Only files of orinbench's own pattern (``.NAME.ob<pid>.<random>.tmp``) are considered, plus,
    for ``name`` only, the older pid-less ``.NAME.<random>.tmp``. See the module docstring for
    when one is stale. Errors (a file that vanished, no permission) are ignored: sweeping is
    housekeeping and never fails a write.
    """
    now = time.time() if now is None else now
    legacy = re.compile(_LEGACY_TEMP.format(name=re.escape(name))) if name else None
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or not entry.name.endswith(".tmp"):
            continue
        m = _TEMP_RE.match(entry.name)
        if m is None and not (legacy is not None and legacy.match(entry.name)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        age = now - st.st_mtime
        stale = age > STALE_TEMP_AGE_S
        if not stale and m is not None:
            pid = int(m.group("pid"))
            stale = age > DEAD_WRITER_AGE_S and pid != os.getpid() and not _pid_alive(pid)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputFileError(f"cannot write {target}", why="it is a folder", fix="name a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_stale_temp_files(folder, name=target.name)
        mode_bits = _mode_for(target)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.ob{os.getpid()}.", suffix=".tmp", dir=folder
        )
    except OSError as exc:
        raise InputFileError(
            f"cannot write {target}", why=exc.strerror or str(exc), fix="choose a writable path"
        ) from exc
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            os.fchmod(fh.fileno(), mode_bits)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputFileError(
                f"cannot write {target}", why=exc.strerror or str(exc), fix="choose a writable path"
            ) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Serialise first, then write: a value that cannot be encoded never touches the disk."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, at any depth.

    JSON has no NaN: Python writes a bare ``NaN`` token that strict parsers (jq, browsers'
    JSON.parse) refuse. Results store an unknown number as ``null`` instead.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def resolved_path(p: str | os.PathLike[str]) -> Path:
    """``p`` made absolute (``~`` expanded) with every link resolved."""
    return Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same resolved path, or hard links / bind mounts."""
    if resolved_path(a) == resolved_path(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def check_output_path(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    flag: str = "--out",
    folder: bool = False,
) -> Path:
    """Refuse an output path before any work is done (exit 2, one line); returns it as a Path.

    The path must not be one of ``inputs`` (after resolving links, ``..`` and hard links), must
    not be a folder (with ``folder=True``: must be a folder or not exist yet), and the nearest
    existing folder above it must be writable, so that the write at the end cannot fail for a
    reason known at the start. ``None`` entries in ``inputs`` are skipped.
    """
    p = Path(os.path.expanduser(str(path)))
    for src in inputs:
        if src is None or str(src) == "":
            continue
        if same_file(p, Path(src)):
            raise UsageError(
                f"refusing to write {flag} {p}",
                why=f"it is one of the command's inputs ({src}) and would be replaced",
                fix=f"give {flag} a different path",
            )
    what = f"cannot write {flag} {p}"
    if p.exists() or p.is_symlink():
        if folder:
            if not p.is_dir():
                raise UsageError(what, why="it is not a folder", fix=f"give {flag} a folder")
        elif p.is_dir():
            raise UsageError(what, why="it is a folder", fix=f"give {flag} a file name")
        elif not p.is_file() and not p.is_symlink():
            raise UsageError(what, why="it is not a regular file", fix=f"give {flag} a file name")
    probe = resolved_path(p) if folder and p.is_dir() else resolved_path(p).parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(
            what,
            why=f"{probe} is a file, not a folder",
            fix=f"give {flag} a path in a folder",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(
            what,
            why=f"the folder {probe} is not writable",
            fix=f"give {flag} a path in a writable folder",
        )
    return p


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def require_file(path: str | os.PathLike[str], *, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is a readable regular file, else raise a one-line error."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{what} not found: {p}", fix="check the path")
    if not p.is_file():
        raise InputFileError(f"{what} is not a regular file: {p}", fix="pass a file, not a folder")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{what} is not readable: {p}", fix="check its permissions")
    return p
