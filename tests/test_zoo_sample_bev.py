"""The bundled sample BEV model: valid, deterministic, runs, and its splat sums correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from orinbench.errors import UsageError
from orinbench.model.load import load_model
from orinbench.zoo import lss
from orinbench.zoo.sample_bev import (
    BEV_TENSOR,
    CONTEXT_TENSOR,
    DEPTH_TENSOR,
    build_sample_bev,
    config,
    export_sample_bev,
)

ort = pytest.importorskip("onnxruntime")


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _images(seed: int = 0) -> np.ndarray:
    h, w = config("tiny").image_hw
    return np.random.default_rng(seed).standard_normal((1, 6, 3, h, w)).astype(np.float32)


def reference_splat(depth: np.ndarray, feature: np.ndarray, geom: lss.LssGeometry) -> np.ndarray:
    """Plain-numpy lift-splat: every (camera, bin, row, column) point adds depth × feature to its
    cell; written independently of the ONNX graph."""
    cams, dbins, fh, fw = depth.shape
    channels = feature.shape[-1]
    bev = np.zeros((geom.grid.cells, channels), np.float64)
    cell = geom.point_cell.reshape(cams, dbins, fh, fw)
    for cam in range(cams):
        for d in range(dbins):
            for r in range(fh):
                for c in range(fw):
                    if cell[cam, d, r, c] >= 0:
                        bev[cell[cam, d, r, c]] += depth[cam, d, r, c] * feature[cam, r, c]
    return bev.T.reshape(1, channels, geom.grid.ny, geom.grid.nx)


def test_tiny_model_is_valid_and_has_the_documented_io() -> None:
    model = build_sample_bev("tiny")
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert [i.name for i in graph.input] == ["images"]
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 6, 3, 64, 176]
    assert [o.name for o in graph.output] == ["heatmap", "boxes", "map_seg"]
    assert model.opset_import[0].version == 17 and model.ir_version == 8


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = export_sample_bev(tmp_path / "a.onnx", "tiny", seed=5)
    b = export_sample_bev(tmp_path / "b.onnx", "tiny", seed=5)
    c = export_sample_bev(tmp_path / "c.onnx", "tiny", seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert load_model(a).graph.name == "sample_bev_tiny"
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_tiny_model_runs_in_onnxruntime() -> None:
    sess = _session(build_sample_bev("tiny"))
    heat, boxes, seg = sess.run(None, {"images": _images()})
    assert heat.shape == (1, 10, 16, 16) and boxes.shape == (1, 10, 16, 16)
    assert seg.shape == (1, 6, 16, 16)
    for out in (heat, boxes, seg):
        assert np.isfinite(out).all()
    assert ((heat > 0) & (heat < 1)).all() and ((seg > 0) & (seg < 1)).all()
    assert boxes.std() > 0  # not a constant graph


def test_scatter_and_gather_splats_give_the_same_model_outputs() -> None:
    images = _images(1)
    a = _session(build_sample_bev("tiny", splat="gather")).run(None, {"images": images})
    b = _session(build_sample_bev("tiny", splat="scatter")).run(None, {"images": images})
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_bad_size_or_splat() -> None:
    with pytest.raises(UsageError, match="size 'huge'"):
        build_sample_bev("huge")
    with pytest.raises(UsageError, match="splat"):
        build_sample_bev("tiny", splat="magic")


def test_geometry_puts_each_camera_on_its_side() -> None:
    geom = config("tiny").geometry()
    grid = geom.grid
    cells = geom.point_cell.reshape(geom.cams, geom.depth_bins, geom.feat_h, geom.feat_w)
    ix = np.where(cells >= 0, cells % grid.nx, -1)
    iy = np.where(cells >= 0, cells // grid.nx, -1)
    front, back = 0, 3  # CAM_FRONT looks along +x, CAM_BACK along -x
    assert (ix[front][cells[front] >= 0] >= grid.nx // 2).all()
    assert (ix[back][cells[back] >= 0] < grid.nx // 2).all()
    front_left = 2  # +55 degrees: +y (left) is the upper half of the rows
    assert (iy[front_left][cells[front_left] >= 0] >= grid.ny // 2).mean() > 0.9
    # farther depth bins land farther from the ego car
    centre = (grid.nx - 1) / 2
    near = np.abs(ix[front, 0][cells[front, 0] >= 0] - centre).mean()
    far = np.abs(ix[front, -1][cells[front, -1] >= 0] - centre).mean()
    assert far > near


@pytest.mark.parametrize("method", lss.SPLATS)
def test_splat_matches_a_numpy_reference(method: str) -> None:
    geom = config("tiny").geometry()
    channels = 3
    rng = np.random.default_rng(7)
    depth = rng.random((geom.cams, geom.depth_bins, geom.feat_h, geom.feat_w), dtype=np.float32)
    feature = rng.random((geom.cams, geom.feat_h, geom.feat_w, channels), dtype=np.float32)
    model = lss.build_splat_model(geom, channels, method=method)
    onnx.checker.check_model(model, full_check=True)
    (bev,) = _session(model).run(None, {"depth": depth, "feature": feature})
    np.testing.assert_allclose(bev, reference_splat(depth, feature, geom), rtol=1e-5, atol=1e-5)


def test_splat_of_a_single_point() -> None:
    """One non-zero point: its feature appears in exactly its cell, nowhere else."""
    geom = config("tiny").geometry()
    depth = np.zeros((geom.cams, geom.depth_bins, geom.feat_h, geom.feat_w), np.float32)
    feature = np.zeros((geom.cams, geom.feat_h, geom.feat_w, 2), np.float32)
    cam, d, r, c = 1, 3, 2, 5
    depth[cam, d, r, c] = 2.0
    feature[cam, r, c] = (1.5, -4.0)
    (bev,) = _session(lss.build_splat_model(geom, 2)).run(
        None, {"depth": depth, "feature": feature}
    )
    cell = int(geom.point_cell.reshape(depth.shape)[cam, d, r, c])
    iy, ix = divmod(cell, geom.grid.nx)
    assert bev[0, :, iy, ix].tolist() == [3.0, -8.0]
    assert np.count_nonzero(bev) == 2


def test_sample_model_splat_matches_the_reference_on_its_own_tensors() -> None:
    """Run the real sample model, read its depth, context and pooled BEV tensors, and check the
    pooled BEV against the numpy lift-splat of the depth and context it produced."""
    model = build_sample_bev("tiny")
    for name in (DEPTH_TENSOR, CONTEXT_TENSOR, BEV_TENSOR):
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    outs = _session(model).run([DEPTH_TENSOR, CONTEXT_TENSOR, BEV_TENSOR], {"images": _images(2)})
    depth, context, bev = outs
    np.testing.assert_allclose(depth.sum(axis=1), 1.0, rtol=1e-5)  # a distribution per pixel
    geom = config("tiny").geometry()
    np.testing.assert_allclose(bev, reference_splat(depth, context, geom), rtol=1e-4, atol=1e-4)


def test_gather_plan_groups_every_kept_point_once() -> None:
    geom = config("tiny").geometry()
    plan = lss.gather_plan(geom.point_cell, geom.grid.cells)
    first = plan.levels[0]
    assert first.shape[1] <= lss.GROUP
    real = first[first < geom.points]
    assert sorted(real.tolist()) == np.flatnonzero(geom.point_cell >= 0).tolist()
    occupied = np.unique(geom.point_cell[geom.point_cell >= 0])
    last_rows = plan.levels[-1].shape[0]
    assert (plan.cell_rows[occupied] < last_rows).all()
    empty = np.setdiff1d(np.arange(geom.grid.cells), occupied)
    assert (plan.cell_rows[empty] == last_rows).all()
