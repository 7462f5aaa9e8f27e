"""The bundled sample BEV model: six cameras -> LSS view transform -> detection and map heads.

Built with onnx + numpy only, weights drawn from ``numpy.random.default_rng(seed)``, so the same
seed and size give a byte-identical file. The graph (one file, opset 17):

``images`` [1, 6, 3, H, W]
  -> shared ResNet backbone (basic blocks, BatchNorm folded) and a neck at stride 16
  -> depth net: per feature pixel a softmax over D depth bins (``depth_prob``) and C context
     channels (``context``)
  -> lift (outer product) and splat onto the BEV grid (:mod:`orinbench.zoo.lss`; ``bev_pooled``)
  -> BEV encoder (two strided residual stages, upsampled back and fused)
  -> ``heatmap`` [1, classes, ny, nx] (sigmoid), ``boxes`` [1, 10, ny, nx] (x, y, z offsets,
     w, l, h, sin, cos of yaw, vx, vy) and ``map_seg`` [1, map classes, ny, nx] (sigmoid).

Sizes: ``tiny`` (64×176 images, 16×16 grid, a few ms in ONNX Runtime on a CPU; what the tests
use) and ``full`` (BEVFusion's 256×704 camera input, a ResNet-34 backbone, 59 depth bins,
128×128 grid at 0.8 m; tens of millions of parameters and hundreds of GFLOPs, the order of the
published camera-only BEV detectors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from .._io import atomic_write_bytes
from ..errors import UsageError
from . import _layers as L
from ._graph import GraphBuilder
from .lss import SPLATS, BevGrid, LssGeometry, add_lift, add_splat, frustum_geometry

SIZES = ("tiny", "full")
#: nuScenes detection classes (car, truck, construction vehicle, bus, trailer, barrier,
#: motorcycle, bicycle, pedestrian, traffic cone)
DET_CLASSES = 10
#: BEVFusion's map classes (drivable area, ped crossing, walkway, stop line, car park, divider)
MAP_CLASSES = 6
BOX_CHANNELS = 10

#: names of intermediate tensors that tests and ``onnx.utils.extract_model`` can rely on
DEPTH_TENSOR = "depth_prob"
CONTEXT_TENSOR = "context"
BEV_TENSOR = "bev_pooled"


@dataclass(frozen=True)
class SampleBevConfig:
    image_hw: tuple[int, int]
    stride: int
    dbound: tuple[float, float, float]
    grid: BevGrid
    context: int
    backbone_depths: tuple[int, ...]
    backbone_width: int
    neck: int
    bev: int
    head: int

    def geometry(self) -> LssGeometry:
        return frustum_geometry(
            image_hw=self.image_hw, stride=self.stride, dbound=self.dbound, grid=self.grid
        )


CONFIGS: dict[str, SampleBevConfig] = {
    "tiny": SampleBevConfig(
        image_hw=(64, 176), stride=16, dbound=(1.0, 49.0, 6.0), grid=BevGrid(51.2, 6.4),
        context=8, backbone_depths=(1, 1, 1, 1), backbone_width=8, neck=16, bev=16, head=16,
    ),
    "full": SampleBevConfig(
        image_hw=(256, 704), stride=16, dbound=(1.0, 60.0, 1.0), grid=BevGrid(51.2, 0.8),
        context=64, backbone_depths=(3, 4, 6, 3), backbone_width=64, neck=256, bev=128, head=64,
    ),
}  # fmt: skip


def config(size: str) -> SampleBevConfig:
    """The configuration of ``size`` (``tiny`` or ``full``)."""
    try:
        return CONFIGS[size]
    except KeyError:
        raise UsageError(
            f"unknown sample-bev size {size!r}", fix=f"choose one of {', '.join(SIZES)}"
        ) from None


def image_backbone(b: GraphBuilder, images: str, cfg: SampleBevConfig) -> str:
    """[6, 3, H, W] -> [6, neck, H/16, W/16]: ResNet, last stage resized up and fused."""
    with b.scope("backbone"):
        stages = L.resnet(
            b, images, depths=cfg.backbone_depths, width=cfg.backbone_width, use_bottleneck=False
        )
    with b.scope("neck"):
        c3, c4 = stages[2], stages[3]
        up = L.resize(b, c4, b.shapes[c3][2:])
        y = L.conv(b, L.concat(b, [c3, up]), cfg.neck, 1)
        return L.conv(b, y, cfg.neck, 3)


def depth_net(b: GraphBuilder, x: str, dbins: int, context: int) -> tuple[str, str]:
    """Neck features -> (depth probabilities [6, D, h, w], context [6, h, w, C])."""
    n, _, h, w = b.shapes[x]
    with b.scope("depthnet"):
        y = L.conv(b, x, dbins + context, 1, activation=None)
        logits, ctx = b.op_multi(
            "Split", [y, b.ints([dbins, context])], [(n, dbins, h, w), (n, context, h, w)], axis=1
        )
        depth = b.op("Softmax", [logits], (n, dbins, h, w), axis=1, out=DEPTH_TENSOR)
        ctx = L.transpose(b, ctx, (0, 2, 3, 1), out=CONTEXT_TENSOR)
    return depth, ctx


def bev_encoder(b: GraphBuilder, x: str, width: int) -> str:
    """Two strided residual stages, upsampled back to the input grid and fused."""
    with b.scope("bev_encoder"):
        s1 = L.basic_block(b, x, width, stride=2)
        s2 = L.basic_block(b, s1, width * 2, stride=2)
        up = L.resize(b, s2, b.shapes[s1][2:])
        y = L.conv(b, L.concat(b, [s1, up]), width * 2, 3)
        y = L.resize(b, y, b.shapes[x][2:])
        return L.conv(b, y, width, 3)


def _head(b: GraphBuilder, x: str, hidden: int, out: int, activation: str | None) -> str:
    y = L.conv(b, x, hidden, 3)
    return L.conv(b, y, out, 1, activation=activation)


def build_sample_bev(
    size: str = "tiny", *, seed: int = 0, splat: str = "gather"
) -> onnx.ModelProto:
    """Build the sample BEV model (see the module docstring); deterministic in ``seed``.

    ``splat`` picks the BEV pooling ops (:data:`orinbench.zoo.lss.SPLATS`); the default runs
    exactly on ONNX Runtime and on TensorRT 8.6 and 10 without plugins.
    """
    cfg = config(size)
    if splat not in SPLATS:
        raise UsageError(f"unknown splat {splat!r}", fix=f"choose one of {', '.join(SPLATS)}")
    geom = cfg.geometry()
    h, w = cfg.image_hw
    b = GraphBuilder(
        f"sample_bev_{size}",
        rng=np.random.default_rng(seed),
        doc=f"orinbench sample BEV model, size {size}, seed {seed}, splat {splat}",
    )
    images = b.input("images", (1, geom.cams, 3, h, w))
    x = L.reshape(b, images, (geom.cams, 3, h, w))
    feats = image_backbone(b, x, cfg)
    depth, ctx = depth_net(b, feats, geom.depth_bins, cfg.context)
    with b.scope("view_transform"):
        bev = add_splat(b, add_lift(b, depth, ctx), geom, method=splat)
    y = L.conv(b, bev, cfg.bev, 3)
    y = bev_encoder(b, y, cfg.bev)
    with b.scope("heads"):
        shared = L.conv(b, y, cfg.head, 3)
        with b.scope("heatmap"):
            heat = _head(b, shared, cfg.head, DET_CLASSES, "sigmoid")
        with b.scope("boxes"):
            boxes = _head(b, shared, cfg.head, BOX_CHANNELS, None)
        with b.scope("map"):
            seg = _head(b, y, cfg.head, MAP_CLASSES, "sigmoid")
    b.output(heat, "heatmap")
    b.output(boxes, "boxes")
    b.output(seg, "map_seg")
    return b.build()


def export_sample_bev(
    path: str | os.PathLike[str], size: str = "tiny", *, seed: int = 0, splat: str = "gather"
) -> Path:
    """Write the sample model to ``path`` atomically, checked first; returns the path."""
    from ..model.load import verify_written_model

    model = build_sample_bev(size, seed=seed, splat=splat)
    verify_written_model(model, what=f"the sample model {Path(path).name}")
    return atomic_write_bytes(path, model.SerializeToString())
