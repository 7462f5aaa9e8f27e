"""Run Python in a subprocess that file permissions bind, even when the tests run as root.

Root writes into read-only folders because it holds the capability CAP_DAC_OVERRIDE (and reads
anything through CAP_DAC_READ_SEARCH). CI runs the suite as root, so tests of "this folder is not
writable" would prove nothing there. As root, the child is started through ``setpriv`` with both
capabilities removed from its bounding set: it stays uid 0 (so it can still read the root-owned
interpreter and tree), but a ``chmod 0o500`` folder refuses it as it refuses any user. As any other
user the child simply runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_DROP = "-dac_override,-dac_read_search"


def unprivileged_prefix() -> list[str]:
    """The command prefix that takes away root's permission override (empty for other users)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux is in every Debian image; without it the test cannot run
        pytest.fail("running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return [setpriv, f"--bounding-set={_DROP}", f"--inh-caps={_DROP}", "--"]


def run_python(args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with this tree first on the path, bound by file permissions."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.run(
        [*unprivileged_prefix(), sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        check=False,
    )


def assert_cannot_write(folder: Path) -> None:
    """The precondition of every use: the child really is refused ``folder``."""
    probe = run_python(
        ["-c", "import os, sys; sys.exit(0 if os.access(sys.argv[1], os.W_OK) else 3)", str(folder)]
    )
    assert probe.returncode == 3, f"{folder} is writable for the unprivileged child: {probe}"
