"""BEVDet-R50 (Huang et al., arXiv 2112.11790; config ``configs/bevdet/bevdet-r50.py``) in four
stages, as the BEVDet TensorRT deployments split it.

* ``backbone``: ``images`` [1, 6, 3, 256, 704] -> ResNet-50 -> FPN-for-BEVDet (C4 + upsampled C5
  -> 512 channels at stride 16) -> ``img_feats`` [1, 6, 512, 16, 44]
* ``view_transform``: LSS: a 1x1 depth net (59 depth bins from 1 to 60 m, 64 context channels),
  lift and splat on a 128×128 grid of 0.8 m -> ``bev_feat`` [1, 64, 128, 128]
* ``bev_encoder``: ResNet-for-BEVDet (basic blocks, 128/256/512 channels, stride 2 each) and
  FPN-LSS (stage 3 upsampled ×4 + stage 1, then ×2) -> ``bev_encoded`` [1, 256, 128, 128]
* ``head``: CenterPoint head, six task groups, outputs concatenated over tasks: ``heatmap``
  [1, 10, 128, 128] (sigmoid), ``reg`` [1, 12, ...], ``height`` [1, 6, ...], ``dim``
  [1, 18, ...], ``rot`` [1, 12, ...], ``vel`` [1, 12, ...]

Weights are random (deterministic in the seed): these models are for timing, not accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from . import _layers as L
from ._graph import GraphBuilder, stage_builder
from .lss import BevGrid, add_lift, add_splat, frustum_geometry

NAME = "bevdet"
STAGES = ("backbone", "view_transform", "bev_encoder", "head")
#: CenterPoint task groups of nuScenes (classes per task)
TASKS = (1, 2, 2, 1, 2, 2)
#: CenterPoint regression heads and their channels
COMMON_HEADS = (("reg", 2), ("height", 1), ("dim", 3), ("rot", 2), ("vel", 2))


@dataclass(frozen=True)
class BevDetConfig:
    image_hw: tuple[int, int]
    depths: tuple[int, ...]
    width: int
    neck: int
    dbound: tuple[float, float, float]
    grid: BevGrid
    context: int
    bev_out: int
    head_conv: int


CONFIGS = {
    "tiny": BevDetConfig(
        image_hw=(64, 176), depths=(1, 1, 1, 1), width=8, neck=32, dbound=(1.0, 49.0, 6.0),
        grid=BevGrid(51.2, 6.4), context=8, bev_out=16, head_conv=8,
    ),
    "full": BevDetConfig(
        image_hw=(256, 704), depths=(3, 4, 6, 3), width=64, neck=512, dbound=(1.0, 60.0, 1.0),
        grid=BevGrid(51.2, 0.8), context=64, bev_out=256, head_conv=64,
    ),
}  # fmt: skip


def _backbone(b: GraphBuilder, cfg: BevDetConfig) -> str:
    h, w = cfg.image_hw
    images = b.input("images", (1, 6, 3, h, w))
    x = L.split_cameras(b, images)
    with b.scope("img_backbone"):
        stages = L.resnet(b, x, depths=cfg.depths, width=cfg.width)
    with b.scope("img_neck"):
        c4, c5 = stages[2], stages[3]
        up = L.resize(b, c5, b.shapes[c4][2:], mode="linear")
        y = L.conv(b, L.concat(b, [c4, up]), cfg.neck, 1)
        y = L.conv(b, y, cfg.neck, 3)
    n, c, fh, fw = b.shapes[y]
    return b.output(L.reshape(b, y, (1, n, c, fh, fw)), "img_feats")


def _view_transform(b: GraphBuilder, cfg: BevDetConfig, feats_shape: tuple[int, ...]) -> str:
    geom = frustum_geometry(image_hw=cfg.image_hw, stride=16, dbound=cfg.dbound, grid=cfg.grid)
    feats = b.input("img_feats", feats_shape)
    _, cams, c, fh, fw = feats_shape
    x = L.reshape(b, feats, (cams, c, fh, fw))
    with b.scope("depthnet"):
        y = L.conv(b, x, geom.depth_bins + cfg.context, 1, activation=None)
        logits, ctx = b.op_multi(
            "Split",
            [y, b.ints([geom.depth_bins, cfg.context])],
            [(cams, geom.depth_bins, fh, fw), (cams, cfg.context, fh, fw)],
            axis=1,
        )
        depth = L.softmax(b, logits, 1)
        ctx = L.transpose(b, ctx, (0, 2, 3, 1))
    bev = add_splat(b, add_lift(b, depth, ctx), geom)
    return b.output(bev, "bev_feat")


def _bev_encoder(b: GraphBuilder, cfg: BevDetConfig, bev_shape: tuple[int, ...]) -> str:
    x = b.input("bev_feat", bev_shape)
    c = bev_shape[1]
    feats = []
    y = x
    with b.scope("bev_backbone"):
        for i, mult in enumerate((2, 4, 8)):
            with b.scope(f"layer{i + 1}"):
                y = L.basic_block(b, y, c * mult, stride=2)
                y = L.basic_block(b, y, c * mult)
            feats.append(y)
    with b.scope("bev_neck"):
        s1, s3 = feats[0], feats[2]
        up = L.resize(b, s3, b.shapes[s1][2:], mode="linear")
        y = L.conv(b, L.concat(b, [s1, up]), cfg.bev_out * 2, 3)
        y = L.conv(b, y, cfg.bev_out * 2, 3)
        y = L.resize(b, y, bev_shape[2:], mode="linear")
        y = L.conv(b, y, cfg.bev_out, 3)
        y = L.conv(b, y, cfg.bev_out, 1, activation=None)
    return b.output(y, "bev_encoded")


def _head(b: GraphBuilder, cfg: BevDetConfig, enc_shape: tuple[int, ...]) -> list[str]:
    x = b.input("bev_encoded", enc_shape)
    with b.scope("shared_conv"):
        shared = L.conv(b, x, cfg.head_conv, 3)
    per_head: dict[str, list[str]] = {name: [] for name, _ in (*COMMON_HEADS, ("heatmap", 0))}
    for t, classes in enumerate(TASKS):
        with b.scope(f"task{t}"):
            for name, ch in (*COMMON_HEADS, ("heatmap", classes)):
                with b.scope(name):
                    y = L.conv(b, shared, cfg.head_conv, 3)
                    per_head[name].append(L.conv(b, y, ch, 3, activation=None))
    outs = []
    for name, parts in per_head.items():
        y = L.concat(b, parts)
        if name == "heatmap":
            y = L.act(b, y, "sigmoid")
        outs.append(b.output(y, name))
    return outs


def build(size: str, *, seed: int = 0) -> dict[str, onnx.ModelProto]:
    """The four stages of BEVDet-R50 at ``size`` (``tiny`` or ``full``)."""
    cfg = CONFIGS[size]
    models: dict[str, onnx.ModelProto] = {}
    b = stage_builder(NAME, "backbone", seed=seed, index=0)
    feats = _backbone(b, cfg)
    models["backbone"] = b.build()
    shape = b.shapes[feats]
    b = stage_builder(NAME, "view_transform", seed=seed, index=1)
    bev = _view_transform(b, cfg, shape)
    models["view_transform"] = b.build()
    shape = b.shapes[bev]
    b = stage_builder(NAME, "bev_encoder", seed=seed, index=2)
    enc = _bev_encoder(b, cfg, shape)
    models["bev_encoder"] = b.build()
    shape = b.shapes[enc]
    b = stage_builder(NAME, "head", seed=seed, index=3)
    _head(b, cfg, shape)
    models["head"] = b.build()
    return models
