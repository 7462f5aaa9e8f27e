"""A pipeline set up for timing: stages in run order, each input bound to where its data lives.

:meth:`Pipeline.setup` goes through the stages once, in run order: an engine stage gets its frame
inputs through ``load_inputs`` and the outputs of earlier stages through ``bind_input_device`` (by
address, no copy), runs once untimed, and publishes its output buffers for the stages after it; a
custom stage is called once. Every connection is checked then with the concrete shapes, so a
dynamic model or a custom step that returns the wrong shape fails here, naming both stages, and
not in the middle of the timed run.

A frame is then each stage's ``stage_inputs`` / ``enqueue`` / ``fetch_outputs`` (only for stages
whose outputs leave the pipeline) / ``synchronize`` in order: :mod:`orinbench.pipeline.harness`
times it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import OrinbenchError, RecipeError
from ..results.schema import TensorSpec
from .chain import CpuMemory, DeviceMemory, DeviceTensor, host_view, is_chain_runner
from .custom import CustomStage, SlotValue
from .graph import PipelineGraph, check_pair
from .recipe import Ref


class EngineStage:
    """An ONNX stage: a chainable runner (ONNX Runtime session or TensorRT engine)."""

    kind = "onnx"

    def __init__(self, name: str, runner: Any, *, fetches: bool = False) -> None:
        if not is_chain_runner(runner):
            raise RecipeError(
                f"stage '{name}': the {getattr(runner, 'backend', '?')} runner cannot chain stages",
                why="it lacks output_device_buffer / bind_input_device / device_memory",
                fix="use --backend onnxruntime, or a TensorRT runner that implements chaining",
            )
        self.name = name
        self.runner = runner
        self.backend: str = runner.backend
        self.fetches = fetches

    def stage_inputs(self) -> None:
        self.runner.stage_inputs()

    def enqueue(self) -> None:
        self.runner.enqueue()

    def fetch_outputs(self) -> None:
        self.runner.fetch_outputs()

    def synchronize(self) -> None:
        self.runner.synchronize()

    def device_timer(self) -> Any:
        return self.runner.device_timer()


Stage = EngineStage | CustomStage


class Pipeline:
    """The stages of one recipe, wired together. Call :meth:`setup` once before timing."""

    def __init__(
        self,
        graph: PipelineGraph,
        stages: Mapping[str, Stage],
        *,
        source: str = "<recipe>",
    ) -> None:
        self.graph = graph
        self.source = source
        self._stages = dict(stages)
        missing = [n for n in graph.order if n not in self._stages]
        if missing:
            raise ValueError(f"no stage object for {missing}")
        #: concrete input shapes of every stage, filled by setup (for FLOP counts)
        self.input_shapes: dict[str, dict[str, tuple[int, ...]]] = {}
        #: concrete specs of the pipeline outputs, filled by setup
        self.output_specs: dict[str, TensorSpec] = {}
        fetch = {r.stage for r in graph.outputs.values()}
        for name, st in self._stages.items():
            if isinstance(st, EngineStage):
                st.fetches = name in fetch

    @property
    def stages(self) -> tuple[Stage, ...]:
        """Stage objects in run order."""
        return tuple(self._stages[n] for n in self.graph.order)

    def memory(self) -> DeviceMemory:
        """The memory of the engine stages (host memory when there are none)."""
        for st in self.stages:
            if isinstance(st, EngineStage):
                return st.runner.device_memory()  # type: ignore[no-any-return]
        return CpuMemory()

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, frame: Mapping[str, np.ndarray]) -> None:
        """Bind every stage to the frame inputs and to earlier stages' outputs; run once."""
        missing = [n for n in self.graph.frame_inputs if n not in frame]
        if missing:
            raise RecipeError(f"no data for frame input(s) {', '.join(missing)}")
        for name in self.graph.order:
            st = self._stages[name]
            try:
                if isinstance(st, EngineStage):
                    self._setup_engine(st, frame)
                else:
                    self._setup_custom(st, frame)
            except RecipeError:
                raise
            except OrinbenchError as exc:
                raise RecipeError(
                    f"{self.source}: stage '{name}': {exc.what}", why=exc.why, fix=exc.fix
                ) from exc
        for key, ref in self.graph.outputs.items():
            t = self._tensor(ref)
            self.output_specs[key] = TensorSpec(key, t.dtype, t.shape)

    def _tensor(self, ref: Ref) -> DeviceTensor:
        assert ref.stage is not None
        st = self._stages[ref.stage]
        if isinstance(st, EngineStage):
            return st.runner.output_device_buffer(ref.tensor)  # type: ignore[no-any-return]
        return st.output(ref.tensor)

    def _check(self, stage: str, consumed: TensorSpec, ref: Ref, t: DeviceTensor) -> None:
        check_pair(self.source, stage, consumed, ref, TensorSpec(ref.tensor, t.dtype, t.shape))

    def _setup_engine(self, st: EngineStage, frame: Mapping[str, np.ndarray]) -> None:
        runner = st.runner
        feed: dict[str, np.ndarray] = {}
        device: dict[str, DeviceTensor] = {}
        for spec in runner.inputs:
            ref = self.graph.sources[st.name][spec.name]
            if ref.stage is None:
                feed[spec.name] = frame[ref.tensor]
                continue
            t = self._tensor(ref)
            self._check(st.name, spec, ref, t)
            view = host_view(t)
            # load_inputs wants host arrays for every input; the data it will really read is
            # bound by address right after, so a placeholder of the right shape is enough
            feed[spec.name] = view if view is not None else np.zeros(t.shape, np.dtype(t.dtype))
            device[spec.name] = t
            producer = self._stages[ref.stage]
            if isinstance(producer, CustomStage):
                producer.subscribe(ref.tensor, runner, spec.name)
        runner.load_inputs(feed)
        for name, t in device.items():
            runner.bind_input_device(name, t)
        self.input_shapes[st.name] = {k: tuple(int(d) for d in v.shape) for k, v in feed.items()}
        st.stage_inputs()
        st.enqueue()
        st.fetch_outputs()
        st.synchronize()
        for spec in runner.outputs:
            runner.output_device_buffer(spec.name)  # fixes the buffers now, before consumers bind

    def _setup_custom(self, st: CustomStage, frame: Mapping[str, np.ndarray]) -> None:
        inputs: dict[str, SlotValue] = {}
        for name, ref in self.graph.sources[st.name].items():
            if ref.stage is None:
                inputs[name] = frame[ref.tensor]
                continue
            producer = self._stages[ref.stage]
            if isinstance(producer, CustomStage):
                inputs[name] = _current(producer, ref.tensor)
            else:
                inputs[name] = self._tensor(ref)
        self.input_shapes[st.name] = {
            k: tuple(v.shape) if isinstance(v, (np.ndarray, DeviceTensor)) else v().shape
            for k, v in inputs.items()
        }
        st.setup(inputs)

    # -- running --------------------------------------------------------------------------------
    def run_frame(self) -> None:
        """One untimed frame (every stage's phases, in order)."""
        for st in self.stages:
            st.stage_inputs()
            st.enqueue()
            if st.fetches:
                st.fetch_outputs()
            st.synchronize()

    def outputs_host(self) -> dict[str, np.ndarray]:
        """Host copies of the pipeline outputs of the last frame."""
        out: dict[str, np.ndarray] = {}
        cache: dict[str, dict[str, np.ndarray]] = {}
        for key, ref in self.graph.outputs.items():
            assert ref.stage is not None
            st = self._stages[ref.stage]
            if isinstance(st, CustomStage):
                out[key] = st.output_host(ref.tensor)
                continue
            if ref.stage not in cache:
                cache[ref.stage] = st.runner.outputs_host()
            out[key] = cache[ref.stage][ref.tensor]
        return out


def _current(stage: CustomStage, name: str) -> Callable[[], DeviceTensor]:
    return lambda: stage.output(name)
