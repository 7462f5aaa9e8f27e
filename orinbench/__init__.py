"""orinbench: build, benchmark and gate BEV perception models on NVIDIA Jetson Orin."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ExitCode, OrinbenchError

__all__ = ["ExitCode", "OrinbenchError", "__version__"]
