"""``custom`` stages: a Python callable between engines, timed like any other stage.

A custom stage is the deployment's code that is not an ONNX model (voxelisation, BEV pooling,
top-k decoding, NMS). Its callable is named ``"package.module:function"`` or
``"path/to/file.py:function"`` (relative to the recipe) and called as::

    outputs = function(inputs, **args)

``inputs`` maps the names of the stage's ``inputs`` table to numpy arrays, ``outputs`` must map
every name in the stage's ``outputs`` list to a numpy array (extra keys are ignored). With
``on_device = true`` the callable gets and returns :class:`~orinbench.pipeline.chain.DeviceTensor`
objects instead (for CUDA code through pycuda or cupy on TensorRT pipelines); the pipeline then
moves nothing.

On host-accessible memory (ONNX Runtime on the CPU) nothing is copied either way: inputs are
views of the producers' buffers and the returned arrays are bound by address into the consumers.
Where the backend's memory is not host memory (TensorRT), a host callable's inputs are copied
device->host and its outputs host->device inside the stage's time, which is what such a step
costs on a real deployment too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecipeError
from .chain import DeviceMemory, DeviceTensor, host_view
from .recipe import StageSpec

StepFunction = Callable[..., Mapping[str, Any]]
#: what feeds a custom stage's input: a host array, a fixed tensor, or the current tensor
SlotValue = np.ndarray | DeviceTensor | Callable[[], DeviceTensor]


def load_callable(spec: str, *, base_dir: Path, where: str = "") -> StepFunction:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"``."""
    target, _, func = spec.rpartition(":")
    prefix = f"{where}: " if where else ""
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise RecipeError(
                f"{prefix}key 'callable': file not found: {path}",
                fix="check the path (relative paths start at the recipe's folder)",
            )
        mod_name = f"orinbench_custom_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise RecipeError(f"{prefix}key 'callable': cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(mod_name, None)
            raise RecipeError(
                f"{prefix}key 'callable': importing {path} failed",
                why=f"{type(exc).__name__}: {exc}",
                fix="fix the file (run it with python to see the traceback)",
            ) from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise RecipeError(
                f"{prefix}key 'callable': cannot import module '{target}'",
                why=f"{type(exc).__name__}: {exc}",
                fix="check the module name and that it is importable (PYTHONPATH)",
            ) from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise RecipeError(
            f"{prefix}key 'callable': '{target}' has no function '{func}'",
            fix="check the function name after the ':'",
        )
    return fn  # type: ignore[no-any-return]


class CustomStage:
    """Runs one custom stage inside the pipeline (see the module docstring)."""

    kind = "custom"
    backend = "python"

    def __init__(
        self,
        spec: StageSpec,
        fn: StepFunction,
        *,
        memory: DeviceMemory,
        source: str = "",
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.fn = fn
        self.memory = memory
        self.source = source
        self.fetches = False
        # filled in by setup()
        self._readers: list[Callable[[], Any]] = []
        self._input_names: list[str] = []
        self._outputs: dict[str, DeviceTensor] = {}
        self._subscribers: dict[str, list[tuple[Any, str]]] = {}
        self._host_out: dict[str, np.ndarray] = {}

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, inputs: Mapping[str, SlotValue]) -> dict[str, DeviceTensor]:
        """Prepare the readers for ``inputs`` (input name -> slot value), run once, return outputs.

        A slot value is a host array (a frame input), a DeviceTensor (an engine's output, which
        stays where it is) or a function returning the current DeviceTensor (another custom
        stage's output, which may move between frames).
        """
        self._input_names = list(inputs)
        self._readers = [self._reader(name, v) for name, v in inputs.items()]
        raw = self._call()
        self._outputs = {}
        for name in self.spec.outputs:
            value = raw[name]
            if self.spec.on_device:
                self._outputs[name] = value
            elif self.memory.host_accessible:
                self._outputs[name] = DeviceTensor.from_array(name, value)
            else:
                t = self.memory.allocate(name, value.shape, value.dtype.name)
                self.memory.copy_from_host(value, t)
                self._outputs[name] = t
            self._host_out[name] = value if not self.spec.on_device else np.empty(0)
        return dict(self._outputs)

    def subscribe(self, output: str, runner: Any, input_name: str) -> None:
        """``runner`` reads ``output`` through ``bind_input_device``: rebind it when it moves."""
        subs = self._subscribers.setdefault(output, [])
        if not any(r is runner and n == input_name for r, n in subs):
            subs.append((runner, input_name))

    def _reader(self, name: str, value: SlotValue) -> Callable[[], Any]:
        if isinstance(value, np.ndarray):  # a frame input, in host memory
            if not self.spec.on_device:
                return lambda: value
            if self.memory.host_accessible:
                tensor = DeviceTensor.from_array(name, np.require(value, requirements="C"))
                return lambda: tensor
            staged = self.memory.allocate(name, value.shape, value.dtype.name)

            def upload() -> DeviceTensor:
                self.memory.copy_from_host(value, staged)
                return staged

            return upload
        if isinstance(value, DeviceTensor):
            tensor = value
            get: Callable[[], DeviceTensor] = lambda: tensor  # noqa: E731
        else:
            get = value
            tensor = get()
        if self.spec.on_device:
            return get
        if tensor.host_accessible:
            if isinstance(value, DeviceTensor):
                view = host_view(tensor)
                return lambda: view
            return lambda: host_view(get())
        host = self.memory.host_array(tensor.shape, tensor.dtype)

        def download() -> np.ndarray:
            self.memory.copy_to_host(get(), host)
            return host

        return download

    def _call(self) -> Mapping[str, Any]:
        args = {name: read() for name, read in zip(self._input_names, self._readers, strict=True)}
        where = f"{self.source}: stage '{self.name}'" if self.source else f"stage '{self.name}'"
        try:
            out = self.fn(args, **self.spec.args)
        except Exception as exc:
            raise RecipeError(
                f"{where}: the callable {self.spec.callable} failed",
                why=f"{type(exc).__name__}: {exc}",
                fix="check its inputs and args (it is called as function(inputs, **args))",
            ) from exc
        if not isinstance(out, Mapping):
            raise RecipeError(
                f"{where}: the callable {self.spec.callable} returned {type(out).__name__}",
                fix="return a dict mapping each name in 'outputs' to an array",
            )
        missing = [k for k in self.spec.outputs if k not in out]
        if missing:
            raise RecipeError(
                f"{where}: the callable {self.spec.callable} did not return {', '.join(missing)}",
                why=f"it returned {', '.join(map(str, out)) or 'nothing'}",
                fix="return every name listed in the stage's 'outputs'",
            )
        kind = DeviceTensor if self.spec.on_device else np.ndarray
        for k in self.spec.outputs:
            if not isinstance(out[k], kind):
                raise RecipeError(
                    f"{where}: output '{k}' of {self.spec.callable} is {type(out[k]).__name__}, "
                    f"not a {kind.__name__}",
                    fix="return numpy arrays"
                    if not self.spec.on_device
                    else "return DeviceTensor objects (on_device = true)",
                )
        if self.spec.on_device:
            return out
        return {k: np.require(out[k], requirements="C") for k in self.spec.outputs}

    # -- the timed phases (see bench/harness.py) ------------------------------------------------
    def stage_inputs(self) -> None:
        return None

    def enqueue(self) -> None:
        raw = self._call()
        for name in self.spec.outputs:
            value = raw[name]
            current = self._outputs[name]
            if self.spec.on_device:
                self._publish(name, value)
                continue
            self._host_out[name] = value
            if self.memory.host_accessible:
                if int(value.ctypes.data) != current.ptr:
                    self._publish(name, DeviceTensor.from_array(name, value))
            else:
                self.memory.copy_from_host(value, current)

    def _publish(self, name: str, tensor: DeviceTensor) -> None:
        current = self._outputs[name]
        if tensor.shape != current.shape or tensor.dtype != current.dtype:
            where = f"{self.source}: stage '{self.name}'" if self.source else f"stage '{self.name}'"
            raise RecipeError(
                f"{where}: output '{name}' changed from {current.dtype} "
                f"{'x'.join(map(str, current.shape))} to {tensor.dtype} "
                f"{'x'.join(map(str, tensor.shape))} between frames",
                fix="a custom stage must return the same shapes every frame",
            )
        self._outputs[name] = tensor
        if tensor.ptr != current.ptr:
            for runner, input_name in self._subscribers.get(name, ()):
                runner.bind_input_device(input_name, tensor)

    def fetch_outputs(self) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def device_timer(self) -> None:
        return None

    # -- results --------------------------------------------------------------------------------
    def output(self, name: str) -> DeviceTensor:
        """The current tensor of output ``name`` (it may move between frames on host memory)."""
        return self._outputs[name]

    def output_host(self, name: str) -> np.ndarray:
        """A host copy of output ``name`` from the last frame."""
        if not self.spec.on_device:
            return np.array(self._host_out[name])
        t = self._outputs[name]
        view = host_view(t)
        if view is not None:
            return np.array(view)
        host = np.empty(t.shape, dtype=np.dtype(t.dtype))
        self.memory.copy_to_host(t, host)
        return host
