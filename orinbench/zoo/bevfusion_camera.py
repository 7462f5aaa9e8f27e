"""The camera branch of BEVFusion (Liu et al., arXiv 2205.13542), split into the engines of
NVIDIA's CUDA-BEVFusion deployment (NVIDIA-AI-IOT/Lidar_AI_Solution, ResNet-50 variant).

* ``camera_backbone`` (camera.backbone.onnx): ``img`` [1, 6, 3, 256, 704] -> ResNet-50 ->
  GeneralizedLSSFPN (256 channels at stride 8) -> depth net -> ``camera_depth_weights``
  [6, 118, 32, 88] (softmax over 118 bins, 1 to 60 m by 0.5 m) and ``camera_feature``
  [6, 32, 88, 80] (channels last, as CUDA-BEVFusion's bevpool kernel reads them)
* ``vtransform``: BEV pooling with standard ops (CUDA-BEVFusion does this step in a CUDA kernel
  between two engines) on a 360×360 grid of 0.3 m, then camera.vtransform.onnx's downsample
  convs -> ``camera_bev`` [1, 80, 180, 180]
* ``fuser`` (fuser.onnx): ConvFuser (camera only here: no LiDAR input) -> SECOND (5+5 blocks,
  128/256 channels) -> SECONDFPN -> ``middle`` [1, 512, 180, 180]
* ``head_bbox`` (head.bbox.onnx): TransFusion head: dense heatmap, top-200 proposals, one
  transformer decoder layer over the BEV map, FFN heads -> ``reg``, ``height``, ``dim``,
  ``rot``, ``vel``, ``score`` [1, C, 200]
* ``head_map``: BEVFusion's segmentation head: grid transform to 200×200 at 0.5 m (GridSample),
  two 3×3 convs, 6 map classes -> ``map_seg`` [1, 6, 200, 200] (sigmoid)

Weights are random (deterministic in the seed): for timing, not accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from . import _layers as L
from ._graph import GraphBuilder, stage_builder
from .lss import BevGrid, add_lift, add_splat, frustum_geometry

NAME = "bevfusion-camera"
STAGES = ("camera_backbone", "vtransform", "fuser", "head_bbox", "head_map")
DET_CLASSES = 10
MAP_CLASSES = 6
BOX_HEADS = (("reg", 2), ("height", 1), ("dim", 3), ("rot", 2), ("vel", 2))


@dataclass(frozen=True)
class BevFusionConfig:
    image_hw: tuple[int, int]
    depths: tuple[int, ...]
    width: int
    neck: int
    dbound: tuple[float, float, float]
    grid: BevGrid
    context: int
    fuser: int
    second: tuple[int, int]
    second_layers: int
    hidden: int
    proposals: int
    heads: int
    ffn: int
    map_half: float
    map_res: float
    map_ch: int


CONFIGS = {
    "tiny": BevFusionConfig(
        image_hw=(64, 176), depths=(1, 1, 1, 1), width=8, neck=16, dbound=(1.0, 49.0, 6.0),
        grid=BevGrid(54.0, 6.75), context=8, fuser=16, second=(16, 32), second_layers=1,
        hidden=16, proposals=20, heads=2, ffn=32, map_half=50.0, map_res=10.0, map_ch=16,
    ),
    "full": BevFusionConfig(
        image_hw=(256, 704), depths=(3, 4, 6, 3), width=64, neck=256, dbound=(1.0, 60.0, 0.5),
        grid=BevGrid(54.0, 0.3), context=80, fuser=256, second=(128, 256), second_layers=5,
        hidden=128, proposals=200, heads=8, ffn=256, map_half=50.0, map_res=0.5, map_ch=512,
    ),
}  # fmt: skip


def _camera_backbone(b: GraphBuilder, cfg: BevFusionConfig) -> tuple[str, str]:
    h, w = cfg.image_hw
    x = L.split_cameras(b, b.input("img", (1, 6, 3, h, w)))
    with b.scope("backbone"):
        c3, c4, c5 = L.resnet(b, x, depths=cfg.depths, width=cfg.width)[1:]
    with b.scope("neck"):  # GeneralizedLSSFPN: top-down, concat, 1x1 then 3x3
        y = c5
        for lateral in (c4, c3):
            up = L.resize(b, y, b.shapes[lateral][2:], mode="linear")
            y = L.conv(b, L.concat(b, [lateral, up]), cfg.neck, 1)
            y = L.conv(b, y, cfg.neck, 3)
    geom_d = round((cfg.dbound[1] - cfg.dbound[0]) / cfg.dbound[2])
    cams, _, fh, fw = b.shapes[y]
    with b.scope("depthnet"):
        y = L.conv(b, y, cfg.neck, 3)
        y = L.conv(b, y, cfg.neck, 3)
        y = L.conv(b, y, geom_d + cfg.context, 1, activation=None)
        logits, feat = b.op_multi(
            "Split",
            [y, b.ints([geom_d, cfg.context])],
            [(cams, geom_d, fh, fw), (cams, cfg.context, fh, fw)],
            axis=1,
        )
        depth = L.softmax(b, logits, 1)
        feat = L.transpose(b, feat, (0, 2, 3, 1))
    return b.output(feat, "camera_feature"), b.output(depth, "camera_depth_weights")


def _vtransform(
    b: GraphBuilder, cfg: BevFusionConfig, feat_shape: tuple[int, ...], depth_shape: tuple[int, ...]
) -> str:
    feat = b.input("camera_feature", feat_shape)
    depth = b.input("camera_depth_weights", depth_shape)
    geom = frustum_geometry(image_hw=cfg.image_hw, stride=8, dbound=cfg.dbound, grid=cfg.grid)
    bev = add_splat(b, add_lift(b, depth, feat), geom)
    c = cfg.context
    with b.scope("downsample"):
        y = L.conv(b, bev, c, 3)
        y = L.conv(b, y, c, 3, stride=2)
        y = L.conv(b, y, c, 3)
    return b.output(y, "camera_bev")


def _fuser(b: GraphBuilder, cfg: BevFusionConfig, bev_shape: tuple[int, ...]) -> str:
    x = b.input("camera_bev", bev_shape)
    with b.scope("fuser"):
        y = L.conv(b, x, cfg.fuser, 3)
    outs = []
    with b.scope("decoder.backbone"):  # SECOND
        for i, (ch, stride) in enumerate(zip(cfg.second, (1, 2), strict=True)):
            with b.scope(f"blocks{i}"):
                y = L.conv(b, y, ch, 3, stride=stride)
                for _ in range(cfg.second_layers):
                    y = L.conv(b, y, ch, 3)
            outs.append(y)
    with b.scope("decoder.neck"):  # SECONDFPN: 1x1 (stride 1) and 2x2 transposed (stride 2)
        ups = [L.conv(b, outs[0], cfg.second[1], 1), L.deconv(b, outs[1], cfg.second[1], 2)]
        y = L.concat(b, ups)
    return b.output(y, "middle")


def _bev_centres(n: int, half: float) -> np.ndarray:
    res = 2 * half / n
    return -half + res * (np.arange(n) + 0.5)


def _head_bbox(b: GraphBuilder, cfg: BevFusionConfig, mid_shape: tuple[int, ...]) -> list[str]:
    x = b.input("middle", mid_shape)
    _, _, hh, ww = mid_shape
    hw = hh * ww
    d, k = cfg.hidden, cfg.proposals
    with b.scope("shared_conv"):
        feat = L.conv(b, x, d, 3)
    with b.scope("heatmap_head"):
        heat = L.conv(b, feat, 64 if d >= 64 else d, 3)
        heat = L.conv(b, heat, DET_CLASSES, 3, activation=None)
        heat = L.act(b, heat, "sigmoid")
    with b.scope("proposals"):
        # keep local maxima only (3x3 max-pool NMS), then the top-k over all classes and cells
        pooled = b.op("MaxPool", [heat], b.shapes[heat], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        is_max = b.op("Equal", [heat, pooled], b.shapes[heat])
        is_max = b.op("Cast", [is_max], b.shapes[heat], to=TensorProto.FLOAT)
        heat = L.mul(b, heat, is_max)
        flat = L.reshape(b, heat, (1, DET_CLASSES * hw))
        _, top = b.op_multi("TopK", [flat, b.ints([k])], [(1, k), (1, k)], axis=-1)
        top = L.reshape(b, top, (k,))
        cls = b.op("Div", [top, b.const(np.int64(hw), "hw")], (k,))
        pos = b.op("Sub", [top, b.op("Mul", [cls, b.const(np.int64(hw), "hw")], (k,))], (k,))
    with b.scope("queries"):
        feat_flat = L.reshape(b, feat, (1, d, hw))
        query = b.op("Gather", [feat_flat, pos], (1, d, k), axis=2)
        query = L.transpose(b, query, (0, 2, 1))
        table = b.weight((DET_CLASSES, d), std=0.1, base="class_encoding")
        query = L.add(b, query, b.op("Gather", [table, cls], (k, d), axis=0))
        ys, xs = np.meshgrid(
            _bev_centres(hh, cfg.grid.half), _bev_centres(ww, cfg.grid.half), indexing="ij"
        )
        grid = b.const(np.stack([xs, ys], -1).reshape(1, hw, 2).astype(np.float32), "bev_pos")
        query_xy = b.op("Gather", [grid, pos], (1, k, 2), axis=1)
    with b.scope("query_pos"):
        query_pos = L.mlp(b, query_xy, d, d)
    with b.scope("key_pos"):
        key_pos = L.mlp(b, grid, d, d)
    memory = L.transpose(b, feat_flat, (0, 2, 1))
    with b.scope("decoder"):
        y = L.decoder_layer(
            b,
            query,
            memory,
            query_pos=query_pos,
            memory_pos=key_pos,
            heads=cfg.heads,
            ffn_dim=cfg.ffn,
        )
    outs = []
    for name, ch in (*BOX_HEADS, ("score", DET_CLASSES)):
        with b.scope(f"prediction.{name}"):
            p = L.linear(b, L.linear(b, y, 64 if d >= 64 else d, activation="relu"), ch)
            p = L.transpose(b, p, (0, 2, 1))
            if name == "score":
                p = L.act(b, p, "sigmoid")
        outs.append(b.output(p, name))
    return outs


def _head_map(b: GraphBuilder, cfg: BevFusionConfig, mid_shape: tuple[int, ...]) -> str:
    x = b.input("middle", mid_shape)
    n_out = round(2 * cfg.map_half / cfg.map_res)
    with b.scope("grid_transform"):
        # output cell centres in metres, normalised to the input extent [-54, 54] -> [-1, 1]
        c = _bev_centres(n_out, cfg.map_half) / cfg.grid.half
        gy, gx = np.meshgrid(c, c, indexing="ij")
        grid = b.const(np.stack([gx, gy], -1)[None].astype(np.float32), "grid")
        y = b.op(
            "GridSample",
            [x, grid],
            (1, mid_shape[1], n_out, n_out),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=0,
        )
    with b.scope("classifier"):
        y = L.conv(b, y, cfg.map_ch, 3)
        y = L.conv(b, y, cfg.map_ch, 3)
        y = L.conv(b, y, MAP_CLASSES, 1, activation="sigmoid")
    return b.output(y, "map_seg")


def build(size: str, *, seed: int = 0) -> dict[str, onnx.ModelProto]:
    """The five stages of the BEVFusion camera branch at ``size`` (``tiny`` or ``full``)."""
    cfg = CONFIGS[size]
    models: dict[str, onnx.ModelProto] = {}
    b = stage_builder(NAME, "camera_backbone", seed=seed, index=0)
    feat, depth = _camera_backbone(b, cfg)
    models["camera_backbone"] = b.build()
    feat_shape, depth_shape = b.shapes[feat], b.shapes[depth]
    b = stage_builder(NAME, "vtransform", seed=seed, index=1)
    bev = _vtransform(b, cfg, feat_shape, depth_shape)
    models["vtransform"] = b.build()
    bev_shape = b.shapes[bev]
    b = stage_builder(NAME, "fuser", seed=seed, index=2)
    mid = _fuser(b, cfg, bev_shape)
    models["fuser"] = b.build()
    mid_shape = b.shapes[mid]
    b = stage_builder(NAME, "head_bbox", seed=seed, index=3)
    _head_bbox(b, cfg, mid_shape)
    models["head_bbox"] = b.build()
    b = stage_builder(NAME, "head_map", seed=seed, index=4)
    _head_map(b, cfg, mid_shape)
    models["head_map"] = b.build()
    return models
