"""Multi-stage pipelines: recipes (TOML), stages chained on the device, per-stage timing.

``orinbench run engines/NAME.toml`` calls :func:`run_recipe`; docs/pipelines.md describes the
recipe format and the timing. The heavier modules (runners, the harness) are imported on use.
"""

from __future__ import annotations

from .chain import ChainRunner, CpuMemory, CudaApiMemory, DeviceMemory, DeviceTensor, host_view
from .recipe import FrameInput, Recipe, Ref, StageSpec, load_recipe, parse_recipe

__all__ = [
    "ChainRunner",
    "CpuMemory",
    "CudaApiMemory",
    "DeviceMemory",
    "DeviceTensor",
    "FrameInput",
    "Recipe",
    "Ref",
    "StageSpec",
    "host_view",
    "load_recipe",
    "parse_recipe",
    "run_recipe",
]


def __getattr__(name: str) -> object:
    if name == "run_recipe":
        from .run import run_recipe

        return run_recipe
    raise AttributeError(name)
