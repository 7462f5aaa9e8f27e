"""Fixtures that put the TensorRT double and the fake CUDA layer in place of the real ones.

Import them into a test module (``from trt_double.pytest_fixtures import trt_env  # noqa``). The
``trt_env`` fixture takes the TensorRT version from ``@pytest.mark.parametrize("trt_env", [...],
indirect=True)`` (default 10.3), imports the double as ``tensorrt``, registers a fresh FakeCuda as
both the double's CUDA runtime and orinbench's default CUDA layer, and replaces the dlopen of
plugin libraries by one that registers the op types a fake library lists (a text file
``TRT_DOUBLE_PLUGIN: OpA,OpB``). Everything is undone afterwards, and the test fails if the code
under test leaked GPU or page-locked memory or left a CUDA context pushed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .fake_cuda import FakeCuda

DOUBLE_DIR = Path(__file__).resolve().parent
VERSIONS = ("8.5", "8.6", "10.3", "11.4")
PLUGIN_MARK = "TRT_DOUBLE_PLUGIN:"


@dataclass
class TrtEnv:
    trt: ModuleType
    cuda: FakeCuda
    version: str

    @property
    def testing(self) -> Any:
        return self.trt._testing


def _purge() -> None:
    for name in list(sys.modules):
        if name == "tensorrt" or name.startswith("tensorrt."):
            del sys.modules[name]


def import_double(version: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("ORINBENCH_TRT_DOUBLE", version)
    monkeypatch.syspath_prepend(str(DOUBLE_DIR))
    _purge()
    importlib.invalidate_caches()
    trt = importlib.import_module("tensorrt")
    assert Path(trt.__file__).resolve().parent.parent == DOUBLE_DIR, trt.__file__
    return trt


def fake_dlopen(path: str) -> object:
    """Stands in for ctypes.CDLL: a fake plugin library registers the op types it lists."""
    text = Path(path).read_bytes()
    if not text.startswith(PLUGIN_MARK.encode()):
        raise OSError(f"{path}: invalid ELF header")
    ops = [op.strip() for op in text[len(PLUGIN_MARK) :].decode().split(",") if op.strip()]
    sys.modules["tensorrt"]._testing.register_plugin_ops(ops)
    return object()


@pytest.fixture
def trt_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrtEnv]:
    version = getattr(request, "param", "10.3")
    trt = import_double(version, monkeypatch)
    trt._testing.reset()
    cuda = FakeCuda()
    trt._testing.set_cuda(cuda)
    from orinbench.backends.tensorrt import compat
    from orinbench.backends.tensorrt import cuda as cuda_mod

    monkeypatch.setattr(cuda_mod, "default_layer", lambda: cuda)
    monkeypatch.setattr(compat, "_dlopen", fake_dlopen)
    # build.py imported default_layer by name
    from orinbench.backends.tensorrt import build, runner

    monkeypatch.setattr(build, "default_layer", lambda: cuda)
    monkeypatch.setattr(runner, "default_layer", lambda: cuda)
    yield TrtEnv(trt=trt, cuda=cuda, version=version)
    _purge()
    assert cuda.depth == 0, "a CUDA context was left pushed"
    assert cuda.live_allocations() == 0, f"{cuda.live_allocations()} allocations leaked"


def write_fake_plugin(path: Path, *ops: str) -> Path:
    path.write_text(PLUGIN_MARK + ",".join(ops))
    return path
