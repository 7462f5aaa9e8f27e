"""Small readers for sysfs, procfs and device-tree files under a configurable root.

Every telemetry reader takes ``root`` (default ``/``) so that tests can point it at a fake tree in a
temporary folder. Readers return ``None`` for a file that is missing or unreadable: telemetry never
guesses a value it could not read.
"""

from __future__ import annotations

import os
from pathlib import Path


def under(root: str | os.PathLike[str], path: str) -> Path:
    """``path`` (absolute, as on the device) inside ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The file's text, stripped of whitespace and device-tree NUL terminators, or None."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.replace(b"\x00", b"\n").decode("utf-8", "replace").strip()


def read_int(path: str | os.PathLike[str]) -> int | None:
    """The first integer in the file (``"32760 ma"`` reads as 32760), or None."""
    text = read_text(path)
    if not text:
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def list_dir(path: str | os.PathLike[str]) -> list[str]:
    """Sorted entries of a folder; empty when it does not exist or cannot be read."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
