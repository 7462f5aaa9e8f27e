"""What the self-test's checks share while they run: options, the work folder, what was built."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .rows import Row

#: a stand-in opener for a power source by name (tests; e.g. jtop without its root-only service)
PowerFactory = Callable[[float], Any]


@dataclass(frozen=True)
class SelftestOptions:
    """How the self-test runs. ``quick`` shortens every measured window (CI); ``only`` limits the
    rows to those ids or id prefixes (their prerequisites run too). ``root``, ``jtop_socket``,
    ``tegrastats_bin`` and ``nvml_index`` are passed to the telemetry layer as ``system check``
    and ``--power`` would; ``power_factories`` replaces the opener of a named source (tests)."""

    quick: bool = False
    only: tuple[str, ...] = ()
    root: str = "/"
    jtop_socket: str | None = None
    tegrastats_bin: str | None = None
    nvml_index: int = 0
    device: int = 0
    power_factories: Mapping[str, PowerFactory] = field(default_factory=dict)

    @property
    def bench_s(self) -> float:
        """Measured seconds of one benchmark (no power: each bench only proves the path)."""
        return 0.3 if self.quick else 2.0

    @property
    def quick_iterations(self) -> int:
        """Timed iterations of one benchmark with ``quick`` (instead of :attr:`bench_s`)."""
        return 20

    @property
    def warmup_s(self) -> float:
        return 0.1 if self.quick else 0.5

    @property
    def power_s(self) -> float:
        """Seconds each power source samples; the cross-check window is twice as long."""
        return 0.6 if self.quick else 2.0

    @property
    def profile_iterations(self) -> int:
        return 5 if self.quick else 30

    @property
    def calib_samples(self) -> int:
        return 4 if self.quick else 16

    def to_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "only": list(self.only),
            "root": self.root,
            "jtop_socket": self.jtop_socket,
            "tegrastats_bin": self.tegrastats_bin,
            "nvml_index": self.nvml_index,
            "device": self.device,
            "power_factories": sorted(self.power_factories),
        }


class Context:
    """Mutable run state handed to every check: where to write, what earlier checks made.

    Deliberately not frozen: checks run in order and later ones use what earlier ones built (the
    exported model, engines, the calibration cache); ``rows`` holds every finished row by id.
    """

    def __init__(self, options: SelftestOptions, workdir: str | os.PathLike[str]) -> None:
        self.options = options
        self.workdir = Path(workdir)
        self.model: Path | None = None
        self.engines: dict[str, Path] = {}
        self.calib_data: Path | None = None
        self.calib_cache: Path | None = None
        self.int8_layers: int | None = None
        self.rows: dict[str, Row] = {}
        #: power sources that opened and sampled (name -> mean W), for the cross-check
        self.power_ok: dict[str, float] = {}

    def engine(self, name: str) -> Path:
        path = self.engines.get(name)
        if path is None:
            raise UsageError(f"no {name} engine was built in this self-test")
        return path
