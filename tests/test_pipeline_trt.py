"""The TensorRT path of pipelines, against the TensorRT double and the fake CUDA layer.

The double runs each engine's ONNX model for real (through ONNX Runtime) at the device addresses
it is given, and the fake CUDA layer queues copies and inferences per stream with exact simulated
durations, so these tests check values, copies and GPU times. The stages run on
``TensorRTRunner`` itself (its chaining methods: docs/pipelines.md, 'What a runner must offer');
tests/test_trt_chain.py checks those methods one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pipeline_models import CHAIN_RECIPE, chain_dir, save, unary, write

from orinbench.backends.tensorrt import TensorRTRunner
from orinbench.bench.harness import StopRule, Warmup
from orinbench.errors import RecipeError
from orinbench.pipeline import run as pipeline_run
from orinbench.pipeline.build import build_stage_engines
from orinbench.pipeline.chain import ChainRunner
from orinbench.pipeline.graph import resolve_graph
from orinbench.pipeline.models import resolve_models, stage_io
from orinbench.pipeline.recipe import load_recipe

#: the TensorRT double and the fake CUDA layer (the trt_env fixture)


FAST = {"warmup": Warmup(seconds=0, iterations=1), "stop": StopRule(iterations=10)}


def _chain(tmp_path: Path, extra: str = "") -> Path:
    text = CHAIN_RECIPE.replace('onnx = "b.onnx"', 'onnx = "b.onnx"\nprecision = "fp16"') + extra
    return write(chain_dir(tmp_path), text)


def test_stages_build_with_their_own_precision_and_only_when_stale(
    trt_env: Any, tmp_path: Path
) -> None:
    recipe = load_recipe(_chain(tmp_path))
    models = resolve_models(recipe)
    io = stage_io(recipe, models)
    graph = resolve_graph(recipe, io)
    events: list[str] = []
    kw = {"graph": graph, "io": io, "cache_dir": tmp_path / "cache", "on_event": events.append}
    engines = build_stage_engines(recipe, models, **kw)  # type: ignore[arg-type]
    folder = tmp_path / "cache" / "engines" / "chain"
    assert engines == {
        "a": folder / "a.fp32.engine",
        "b": folder / "b.fp16.engine",
        "c": folder / "c.fp32.engine",
    }
    assert all(p.is_file() for p in engines.values())
    assert sum("built" in e for e in events) == 3
    events.clear()
    build_stage_engines(recipe, models, **kw)  # type: ignore[arg-type]
    assert events == [f"stage {s}: engine {p.name}: up to date" for s, p in engines.items()]
    # a changed model is rebuilt, the others are not
    save(unary("y", "z", op="Add", const=5.0), tmp_path / "b.onnx")
    events.clear()
    build_stage_engines(recipe, models, **kw)  # type: ignore[arg-type]
    assert [("up to date" in e) for e in events] == [True, False, True]


def test_int8_without_a_cache_or_data_names_the_stage(trt_env: Any, tmp_path: Path) -> None:
    recipe = load_recipe(
        write(
            chain_dir(tmp_path),
            CHAIN_RECIPE.replace(
                'onnx = "a.onnx"', 'onnx = "a.onnx"\nprecision = "int8"\ncalib_cache = "a.cache"'
            ),
        )
    )
    models = resolve_models(recipe)
    io = stage_io(recipe, models)
    with pytest.raises(RecipeError, match=r"stage 'a': key 'calib_cache'.*not found"):
        build_stage_engines(recipe, models, graph=resolve_graph(recipe, io), io=io,
                            cache_dir=tmp_path)  # fmt: skip


def test_a_pipeline_runs_on_tensorrt_chained_on_the_device(trt_env: Any, tmp_path: Path) -> None:
    recipe = _chain(tmp_path)
    cuda = trt_env.cuda
    with pipeline_run.open_pipeline(recipe, backend="tensorrt", cache_dir=tmp_path / "c") as op:
        x = op.frame["x"]
        before = dict(cuda.ran)
        np.testing.assert_allclose(op.infer()["w"], (2 * x + 1) + x, rtol=1e-3)
        ran = {k: v - before.get(k, 0) for k, v in cuda.ran.items()}
        # one frame: x copied in for the two stages that read it, w copied out; y and z stay
        # on the device, three inferences
        assert ran.get("htod") == 2 and ran.get("dtoh") == 1 and ran.get("trt") == 3, ran
        new = {"x": np.full((1, 4), 3.0, np.float32)}
        np.testing.assert_allclose(op.infer(new)["w"], np.full((1, 4), 10.0), rtol=1e-3)


def test_tensorrt_results_have_device_times_and_a_roofline(trt_env: Any, tmp_path: Path) -> None:
    trt_env.testing.config.inference_ms = 2.0
    result = pipeline_run.run_recipe(
        _chain(tmp_path), backend="tensorrt", cache_dir=tmp_path / "c",
        device={"module_name": "Jetson AGX Orin 64GB"}, **FAST,
    )  # fmt: skip
    stages = result.stages or {}
    assert result.config.backend == "tensorrt" and result.config.precision == "mixed"
    for name in ("a", "b", "c"):
        assert stages[name]["gpu_compute"]["p50_ms"] == pytest.approx(2.0)  # the engine's time
        assert stages[name]["engine"]["path"].endswith(".engine")
    assert stages["b"]["precision"] == "fp16"
    # the frame's device time is the stages' (three inferences), its latency at least that
    assert result.stats["gpu_compute"]["p50_ms"] == pytest.approx(6.0)
    roof = stages["a"]["roofline"]
    assert roof["module"] == "agx-orin-64gb" and roof["peak_tflops"] == 5.3  # FP32 peak
    assert roof["fraction_of_peak"] == pytest.approx(roof["achieved_tflops"] / 5.3)
    assert stages["b"]["roofline"]["fraction_of_peak"] is None  # no published FP16 peak
    assert not [w for w in result.warnings if w.code == "precision-not-applied"]


def test_a_host_custom_stage_between_engines_copies_inside_its_own_time(
    trt_env: Any, tmp_path: Path
) -> None:
    (tmp_path / "steps.py").write_text("def neg(inputs):\n    return {'s': -inputs['t']}\n")
    save(unary("x", "y", op="Mul", const=2.0), tmp_path / "a.onnx")
    save(unary("s", "w", op="Add", const=1.0), tmp_path / "c.onnx")
    text = """
[[stages]]
name = "a"
onnx = "a.onnx"
[[stages]]
name = "neg"
callable = "steps.py:neg"
inputs = { t = "a.y" }
outputs = ["s"]
[[stages]]
name = "c"
onnx = "c.onnx"
"""
    cuda = trt_env.cuda
    with pipeline_run.open_pipeline(
        write(tmp_path, text), backend="tensorrt", cache_dir=tmp_path / "c"
    ) as op:
        x = op.frame["x"]
        before, pageable = dict(cuda.ran), cuda.pageable_copies
        np.testing.assert_allclose(op.infer()["w"], 1 - 2 * x, rtol=1e-3)
        ran = {k: v - before.get(k, 0) for k, v in cuda.ran.items()}
        # x in; y out to the host step and s back in; w out
        assert ran.get("htod") == 2 and ran.get("dtoh") == 2, ran
        # y lands in page-locked memory; only s, the array the step returned, is pageable
        assert cuda.pageable_copies - pageable == 1


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_the_tensorrt_runner_itself_chains(trt_env: Any, tmp_path: Path, cuda_graph: bool) -> None:
    cuda = trt_env.cuda
    with pipeline_run.open_pipeline(
        _chain(tmp_path),
        backend="tensorrt",
        cache_dir=tmp_path / "c",
        runner_options={"cuda_graph": cuda_graph},
    ) as op:
        runners = {st.name: st.runner for st in op.pipeline.stages}
        assert all(isinstance(r, TensorRTRunner) for r in runners.values())
        assert all(isinstance(r, ChainRunner) for r in runners.values())
        # three runners open at once on the device's primary context
        assert cuda.depth == 3
        # b reads a's output buffer in place, c reads b's: the addresses are the producers'
        y = runners["a"].output_device_buffer("y")
        z = runners["b"].output_device_buffer("z")
        assert runners["b"]._lanes[0].context.get_tensor_address("y") == y.ptr
        assert runners["c"]._lanes[0].context.get_tensor_address("z") == z.ptr
        assert all(r.cuda_graph_active == cuda_graph for r in runners.values())
        x = op.frame["x"]
        before, launches = dict(cuda.ran), cuda.graph_launches
        np.testing.assert_allclose(op.infer()["w"], (2 * x + 1) + x, rtol=1e-3)
        ran = {k: v - before.get(k, 0) for k, v in cuda.ran.items()}
        if cuda_graph:  # the inferences are graph replays, captured with the bound addresses
            assert cuda.graph_launches - launches == 3
            assert ran.get("graph:trt") == 3 and not ran.get("trt"), ran
        else:
            assert ran.get("trt") == 3, ran
        assert ran.get("htod") == 2 and ran.get("dtoh") == 1, ran
        # a new frame goes through load_inputs again, which re-binds the stages
        new = {"x": np.full((1, 4), 3.0, np.float32)}
        np.testing.assert_allclose(op.infer(new)["w"], np.full((1, 4), 10.0), rtol=1e-3)
    assert cuda.depth == 0
