"""The zoo: listing, exporting with a content-hash cache, stage chaining, and full-size scale."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from orinbench.errors import UsageError
from orinbench.model.inspect import inspect_model
from orinbench.zoo import build_model, chain_problems, export_model, list_models

ort = pytest.importorskip("onnxruntime")

NAMES = ("sample-bev", "bevfusion-camera", "bevdet", "petrv2")

#: the order of magnitude each full model must reach, as stated in docs/zoo.md:
#: floating-point parameters (millions) and FLOPs (G, 2 per MAC), [low, high)
FULL_SCALE = {
    "sample-bev": ((10, 100), (100, 1000)),
    "bevfusion-camera": ((10, 100), (300, 3000)),
    "bevdet": ((30, 100), (200, 2000)),
    "petrv2": ((50, 500), (500, 5000)),
}


def test_list_models() -> None:
    entries = list_models()
    assert tuple(e.name for e in entries) == NAMES
    by_name = {e.name: e for e in entries}
    assert by_name["bevfusion-camera"].stages == (
        "camera_backbone", "vtransform", "fuser", "head_bbox", "head_map",
    )  # fmt: skip
    assert by_name["bevdet"].stages == ("backbone", "view_transform", "bev_encoder", "head")
    assert by_name["petrv2"].stages == ("backbone", "decoder")
    assert by_name["sample-bev"].stages == ("model",)
    for e in entries:
        assert e.sizes == ("tiny", "full")
        assert json.loads(json.dumps(e.to_dict()))["name"] == e.name


def _run_chain(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Run the stages in order, feeding each the tensors earlier stages produced (by name)."""
    pool: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths.values()):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {}
        for inp in sess.get_inputs():
            if i == 0:
                pool[inp.name] = rng.standard_normal(inp.shape).astype(np.float32)
            feed[inp.name] = pool[inp.name]  # KeyError here = a broken chain
        outs = sess.run(None, feed)
        for meta, value in zip(sess.get_outputs(), outs, strict=True):
            assert list(value.shape) == list(meta.shape), (path.name, meta.name)
            assert np.isfinite(value).all(), (path.name, meta.name)
            pool[meta.name] = value
    return pool


@pytest.mark.parametrize("name", NAMES)
def test_tiny_models_export_chain_and_run(tmp_path: Path, name: str) -> None:
    paths = export_model(name, size="tiny", out_dir=tmp_path)
    entry = next(e for e in list_models() if e.name == name)
    assert tuple(paths) == entry.stages
    stages = {stage: onnx.load(str(p)) for stage, p in paths.items()}
    for model in stages.values():
        onnx.checker.check_model(model, full_check=True)
    assert chain_problems(stages) == []
    pool = _run_chain(paths)
    last = stages[entry.stages[-1]]
    for out in last.graph.output:
        assert out.name in pool


def test_bevfusion_heads_share_the_fuser_output(tmp_path: Path) -> None:
    stages = build_model("bevfusion-camera", size="tiny")
    head_inputs = {s: [i.name for i in stages[s].graph.input] for s in ("head_bbox", "head_map")}
    assert head_inputs == {"head_bbox": ["middle"], "head_map": ["middle"]}
    assert [o.name for o in stages["fuser"].graph.output] == ["middle"]
    backbone_outs = [o.name for o in stages["camera_backbone"].graph.output]
    assert sorted(backbone_outs) == ["camera_depth_weights", "camera_feature"]


def test_chain_problems_finds_a_broken_chain() -> None:
    stages = build_model("bevdet", size="tiny")
    swapped = {k: stages[k] for k in ("backbone", "bev_encoder", "view_transform", "head")}
    problems = chain_problems(swapped)
    assert any("bev_encoder" in p and "'bev_feat'" in p for p in problems)
    # same name, different shape
    other = build_model("bevdet", size="full")["bev_encoder"]
    mixed = {"backbone": stages["backbone"], "view_transform": stages["view_transform"],
             "bev_encoder": other}  # fmt: skip
    assert any("float32[1, 64, 128, 128]" in p for p in chain_problems(mixed))


def test_export_is_cached_by_content(tmp_path: Path) -> None:
    first = export_model("bevdet", size="tiny", out_dir=tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in first.values()}
    manifest = tmp_path / "bevdet-tiny.json"
    assert manifest.is_file()
    time.sleep(0.01)
    again = export_model("bevdet", size="tiny", out_dir=tmp_path)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in again.values()} == stamps  # nothing rewritten

    damaged = first["head"]
    damaged.write_bytes(b"garbage")
    repaired = export_model("bevdet", size="tiny", out_dir=tmp_path)
    assert onnx.load(str(repaired["head"])).graph.name == "bevdet.head"
    # only the damaged file was rewritten
    assert repaired["backbone"].stat().st_mtime_ns == stamps[first["backbone"]]


def test_export_seeds_are_kept_apart(tmp_path: Path) -> None:
    a = export_model("petrv2", size="tiny", out_dir=tmp_path)
    b = export_model("petrv2", size="tiny", out_dir=tmp_path, seed=3)
    assert a["backbone"].name == "petrv2-tiny.backbone.onnx"
    assert b["backbone"].name == "petrv2-tiny-seed3.backbone.onnx"
    assert a["backbone"].read_bytes() != b["backbone"].read_bytes()


def test_export_is_deterministic(tmp_path: Path) -> None:
    a = export_model("bevfusion-camera", size="tiny", out_dir=tmp_path / "a")
    b = export_model("bevfusion-camera", size="tiny", out_dir=tmp_path / "b")
    # the loop below must compare every stage (it would pass on no files at all)
    stages = ["camera_backbone", "vtransform", "fuser", "head_bbox", "head_map"]
    assert sorted(a) == sorted(b) == sorted(stages)
    for stage in a:
        assert a[stage].read_bytes() == b[stage].read_bytes(), stage


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no zoo model named 'bevformer'"):
        export_model("bevformer", size="tiny", out_dir=tmp_path)
    with pytest.raises(UsageError, match="no size 'huge'"):
        export_model("bevdet", size="huge", out_dir=tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        export_model("bevdet", size="tiny", out_dir=blocker)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_models_have_published_scale(name: str) -> None:
    start = time.perf_counter()
    stages = build_model(name, size="full")
    assert time.perf_counter() - start < 60  # generation stays cheap (~1-3 s here)
    assert chain_problems(stages) == []
    params = flops = 0
    for stage, model in stages.items():
        info = inspect_model(model)
        assert not info.flops.unresolved, (stage, info.flops.unresolved[:3])
        params += info.weight_count
        flops += info.flops.total
    (p_lo, p_hi), (f_lo, f_hi) = FULL_SCALE[name]
    assert p_lo <= params / 1e6 < p_hi
    assert f_lo <= flops / 1e9 < f_hi
