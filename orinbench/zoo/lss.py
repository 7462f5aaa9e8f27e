"""Lift-Splat-Shoot view transform with standard ONNX ops, camera geometry precomputed in numpy.

*Lift*: each feature pixel of each camera gets a softmax depth distribution over ``D`` bins and a
context vector of ``C`` channels; their outer product places ``C`` features, weighted by depth
probability, at ``D`` points along the pixel's ray. *Splat*: every point falls into one cell of a
bird's-eye-view grid (fixed by the camera rig, so computed here once), and each cell is the sum of
its points' features.

Points are ordered (camera, depth bin, feature row, feature column); a cell is ``iy * nx + ix``
and the BEV tensor is ``[1, C, ny, nx]``.

Two splat implementations, both exact sums (see docs/zoo.md for why there are two):

* ``"gather"`` (default): points sorted by cell are summed in fixed-size groups by ``Gather`` +
  ``ReduceSum``, level after level, until each cell has one partial sum; a final ``Gather`` places
  the sums in the grid (empty cells read a zero row). Only Gather/Concat/ReduceSum: exact in
  ONNX Runtime, TensorRT 8.6 and TensorRT 10, with no plugin.
* ``"scatter"``: one ``ScatterElements`` with ``reduction="add"`` (opset 16+). ONNX Runtime runs
  it; TensorRT 10 maps it to its ScatterElements plugin; TensorRT 8.6's parser silently ignores
  ``reduction`` (cells get one point's value instead of the sum), so it is not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx

from ._graph import GraphBuilder

SPLATS = ("gather", "scatter")
#: points (then partial sums) summed per Gather+ReduceSum level of the "gather" splat
GROUP = 4

#: nuScenes camera order and approximate yaws (degrees, counter-clockwise from ego forward)
CAMERA_NAMES = (
    "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT",
)  # fmt: skip
CAMERA_YAWS_DEG = (0.0, -55.0, 55.0, 180.0, 110.0, -110.0)
#: focal length as a fraction of image width: nuScenes' 1266 px at 1600 px, resized to 704 wide
FOCAL_PER_WIDTH = 0.79
CAMERA_HEIGHT_M = 1.5
CAMERA_RADIUS_M = 1.0


@dataclass(frozen=True)
class BevGrid:
    """A square BEV grid centred on the ego car: cells of ``res`` metres over ±``half`` metres."""

    half: float
    res: float
    zmin: float = -10.0
    zmax: float = 10.0

    @property
    def nx(self) -> int:
        return round(2 * self.half / self.res)

    @property
    def ny(self) -> int:
        return self.nx

    @property
    def cells(self) -> int:
        return self.nx * self.ny


@dataclass(frozen=True)
class LssGeometry:
    """Where each lifted point lands: ``point_cell[p]`` is its BEV cell, or -1 outside the grid."""

    cams: int
    depth_bins: int
    feat_h: int
    feat_w: int
    grid: BevGrid
    point_cell: np.ndarray

    @property
    def points(self) -> int:
        return self.cams * self.depth_bins * self.feat_h * self.feat_w


def depth_values(dbound: tuple[float, float, float]) -> np.ndarray:
    """Depth of each bin: ``arange(dmin, dmax, step)``, as in LSS and BEVDet."""
    dmin, dmax, step = dbound
    n = round((dmax - dmin) / step)
    return (dmin + step * np.arange(n)).astype(np.float64)


def frustum_geometry(
    *,
    image_hw: tuple[int, int],
    stride: int,
    dbound: tuple[float, float, float],
    grid: BevGrid,
    cams: int = 6,
) -> LssGeometry:
    """Geometry of a nuScenes-like rig of ``cams`` level pinhole cameras looking outwards."""
    h, w = image_hw
    fh, fw = h // stride, w // stride
    depths = depth_values(dbound)
    focal = FOCAL_PER_WIDTH * w
    u = (np.arange(fw) + 0.5) * stride - 0.5
    v = (np.arange(fh) + 0.5) * stride - 0.5
    d, vv, uu = np.meshgrid(depths, v, u, indexing="ij")  # [D, fh, fw]
    # camera frame: x right, y down, z forward
    xc = (uu - (w - 1) / 2) * d / focal
    yc = (vv - (h - 1) / 2) * d / focal
    zc = d
    cells = []
    for yaw_deg in CAMERA_YAWS_DEG[:cams]:
        yaw = math.radians(yaw_deg)
        fwd = np.array([math.cos(yaw), math.sin(yaw)])
        right = np.array([math.sin(yaw), -math.cos(yaw)])
        # ego frame: x forward, y left, z up; cameras sit on a circle around the ego origin
        x = CAMERA_RADIUS_M * fwd[0] + zc * fwd[0] + xc * right[0]
        y = CAMERA_RADIUS_M * fwd[1] + zc * fwd[1] + xc * right[1]
        z = CAMERA_HEIGHT_M - yc
        ix = np.floor((x + grid.half) / grid.res).astype(np.int64)
        iy = np.floor((y + grid.half) / grid.res).astype(np.int64)
        inside = (ix >= 0) & (ix < grid.nx) & (iy >= 0) & (iy < grid.ny)
        inside &= (z >= grid.zmin) & (z < grid.zmax)
        cells.append(np.where(inside, iy * grid.nx + ix, -1))
    point_cell = np.stack(cells).reshape(-1)
    return LssGeometry(cams, len(depths), fh, fw, grid, point_cell)


@dataclass(frozen=True)
class GatherPlan:
    """Index tables of the "gather" splat (see the module docstring)."""

    levels: tuple[np.ndarray, ...]  # level i: [groups_i, k_i] rows of the previous level (+pad)
    cell_rows: np.ndarray  # [cells]: row of the last level for each cell (pad row if empty)


def gather_plan(point_cell: np.ndarray, cells: int, *, group: int = GROUP) -> GatherPlan:
    """Plan the grouped sums: each level sums up to ``group`` rows that share a cell."""
    kept = np.flatnonzero(point_cell >= 0)
    order = np.argsort(point_cell[kept], kind="stable")
    rows = kept[order]  # source rows, sorted by cell
    keys = point_cell[kept][order]
    n_source = point_cell.size
    levels: list[np.ndarray] = []
    while True:
        if keys.size == 0:
            break
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        counts = np.diff(np.r_[starts, keys.size])
        if counts.max() == 1:
            break
        k = int(min(group, counts.max()))
        rank = np.arange(keys.size) - np.repeat(starts, counts)
        chunks_per_key = -(-counts // k)
        first_chunk = np.r_[0, np.cumsum(chunks_per_key)[:-1]]
        chunk = np.repeat(first_chunk, counts) + rank // k
        table = np.full((int(chunks_per_key.sum()), k), n_source, dtype=np.int64)
        table[chunk, rank % k] = rows
        levels.append(table)
        keys = np.repeat(keys[starts], chunks_per_key)
        rows = np.arange(keys.size, dtype=np.int64)
        n_source = keys.size
    cell_rows = np.full(cells, n_source, dtype=np.int64)
    cell_rows[keys] = rows
    return GatherPlan(tuple(levels), cell_rows)


def _index(arr: np.ndarray) -> np.ndarray:
    # int32 tables are half the size; every index here is far below 2**31
    return arr.astype(np.int32)


def add_lift(b: GraphBuilder, depth: str, feature: str) -> str:
    """Outer product of depth [cams, D, fh, fw] and features [cams, fh, fw, C] -> points [N, C]."""
    cams, dbins, fh, fw = b.shapes[depth]
    c = b.shapes[feature][-1]
    d = b.op("Reshape", [depth, b.ints([cams, dbins, fh * fw, 1])], (cams, dbins, fh * fw, 1))
    f = b.op("Reshape", [feature, b.ints([cams, 1, fh * fw, c])], (cams, 1, fh * fw, c))
    lifted = b.op("Mul", [d, f], (cams, dbins, fh * fw, c))
    return b.op("Reshape", [lifted, b.ints([-1, c])], (cams * dbins * fh * fw, c), out="lifted")


def add_splat(b: GraphBuilder, points: str, geom: LssGeometry, *, method: str = "gather") -> str:
    """Sum-pool ``points`` [N, C] into the BEV grid -> [1, C, ny, nx]."""
    n, c = b.shapes[points]
    if n != geom.points:
        raise ValueError(f"{n} points given, geometry has {geom.points}")
    cells = geom.grid.cells
    if method == "gather":
        plan = gather_plan(geom.point_cell, cells)
        zero = b.const(np.zeros((1, c), np.float32), "zero_row")
        src = points
        for i, table in enumerate(plan.levels):
            with b.scope(f"level{i}"):
                padded = b.op("Concat", [src, zero], (b.shapes[src][0] + 1, c), axis=0)
                idx = b.const(_index(table), "groups")
                grouped = b.op("Gather", [padded, idx], (*table.shape, c), axis=0)
                src = b.op("ReduceSum", [grouped, b.ints([1])], (table.shape[0], c), keepdims=0)
        padded = b.op("Concat", [src, zero], (b.shapes[src][0] + 1, c), axis=0)
        bev = b.op(
            "Gather", [padded, b.const(_index(plan.cell_rows), "cell_rows")], (cells, c), axis=0
        )
    elif method == "scatter":
        kept = np.flatnonzero(geom.point_cell >= 0)
        updates = points
        if kept.size != n:
            updates = b.op(
                "Gather", [points, b.const(_index(kept), "kept")], (kept.size, c), axis=0
            )
        target = b.const(geom.point_cell[kept].reshape(-1, 1).astype(np.int64), "cell")
        target = b.op("Expand", [target, b.ints([kept.size, c])], (kept.size, c))
        zeros = b.op("ConstantOfShape", [b.ints([cells, c])], (cells, c))
        bev = b.op("ScatterElements", [zeros, target, updates], (cells, c), axis=0, reduction="add")
    else:
        raise ValueError(f"unknown splat {method!r}; choose one of {', '.join(SPLATS)}")
    bev = b.op("Transpose", [bev], (c, cells), perm=[1, 0])
    return b.op(
        "Reshape",
        [bev, b.ints([1, c, geom.grid.ny, geom.grid.nx])],
        (1, c, geom.grid.ny, geom.grid.nx),
        out="bev_pooled",
    )


def build_splat_model(
    geom: LssGeometry, channels: int, *, method: str = "gather"
) -> onnx.ModelProto:
    """A model of just the lift and splat: ``depth`` [cams, D, fh, fw], ``feature``
    [cams, fh, fw, C] -> ``bev`` [1, C, ny, nx]. For tests and for timing the splat alone."""
    b = GraphBuilder("lift_splat", rng=np.random.default_rng(0))
    depth = b.input("depth", (geom.cams, geom.depth_bins, geom.feat_h, geom.feat_w))
    feature = b.input("feature", (geom.cams, geom.feat_h, geom.feat_w, channels))
    bev = add_splat(b, add_lift(b, depth, feature), geom, method=method)
    b.output(bev, "bev")
    return b.build()
