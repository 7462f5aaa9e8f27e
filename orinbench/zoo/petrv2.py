"""PETRv2 with a VoVNetV2-99 backbone (Liu et al., arXiv 2206.01256), single frame, two stages.

* ``backbone``: ``images`` [1, 6, 3, 320, 800] -> VoVNetV2-99 (OSA blocks with eSE) -> CPFPN
  (stride-16 and stride-32 stages -> 256 channels at stride 16) -> ``img_feats``
  [1, 6, 256, 20, 50]
* ``decoder``: 3D position embedding (camera frustum points, 64 depth bins, through a 1x1-conv
  MLP, scaled by a feature-guided gate as in PETRv2), 900 object queries from learned reference
  points, six DETR decoder layers (8 heads, 256 channels, FFN 2048) attending over all
  6 × 20 × 50 image tokens, classification and box branches -> ``cls_scores`` [1, 900, 10],
  ``bbox_preds`` [1, 900, 10]

The published model also attends to the previous frame's 6 views (12 in all); this one uses
the current frame only. Weights are random (deterministic in the seed): for timing, not accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx

from . import _layers as L
from ._graph import GraphBuilder, stage_builder
from .lss import CAMERA_HEIGHT_M, CAMERA_RADIUS_M, CAMERA_YAWS_DEG, FOCAL_PER_WIDTH

NAME = "petrv2"
STAGES = ("backbone", "decoder")
QUERIES = 900
CLASSES = 10
CODE_SIZE = 10
#: PETR's point-cloud range, used to normalise the 3D position embedding
PC_RANGE = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)
DEPTH_START, DEPTH_MAX = 1.0, 61.2


@dataclass(frozen=True)
class PetrConfig:
    image_hw: tuple[int, int]
    stem: tuple[int, int, int]
    conv_ch: tuple[int, ...]
    out_ch: tuple[int, ...]
    blocks: tuple[int, ...]
    osa_layers: int
    embed: int
    heads: int
    ffn: int
    layers: int
    depth_bins: int


CONFIGS = {
    "tiny": PetrConfig(
        image_hw=(64, 160), stem=(8, 8, 16), conv_ch=(8, 8, 8, 8), out_ch=(16, 24, 32, 40),
        blocks=(1, 1, 1, 1), osa_layers=3, embed=32, heads=4, ffn=64, layers=2, depth_bins=8,
    ),
    "full": PetrConfig(
        image_hw=(320, 800), stem=(64, 64, 128), conv_ch=(128, 160, 192, 224),
        out_ch=(256, 512, 768, 1024), blocks=(1, 3, 9, 3), osa_layers=5, embed=256, heads=8,
        ffn=2048, layers=6, depth_bins=64,
    ),
}  # fmt: skip


def _backbone(b: GraphBuilder, cfg: PetrConfig) -> str:
    h, w = cfg.image_hw
    x = L.split_cameras(b, b.input("images", (1, 6, 3, h, w)))
    with b.scope("img_backbone"):
        stages = L.vovnet(
            b,
            x,
            stem=cfg.stem,
            conv_ch=cfg.conv_ch,
            out_ch=cfg.out_ch,
            blocks=cfg.blocks,
            layers=cfg.osa_layers,
        )
    with b.scope("img_neck"):  # CPFPN: laterals on stride 16 and 32, top-down add, 3x3 output
        lat16 = L.conv(b, stages[2], cfg.embed, 1, activation=None)
        lat32 = L.conv(b, stages[3], cfg.embed, 1, activation=None)
        y = L.add(b, lat16, L.resize(b, lat32, b.shapes[lat16][2:]))
        y = L.conv(b, y, cfg.embed, 3, activation=None)
    n, c, fh, fw = b.shapes[y]
    return b.output(L.reshape(b, y, (1, n, c, fh, fw)), "img_feats")


def _inverse_sigmoid(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    x = np.clip(x, eps, 1 - eps)
    return np.asarray(np.log(x / (1 - x)))


def frustum_coords(cfg: PetrConfig, fh: int, fw: int) -> np.ndarray:
    """PETR's 3D coordinates input: [cams, depth_bins * 3, fh, fw], normalised, inverse-sigmoid.

    Depth bins are linear-increasing (LID) from DEPTH_START to DEPTH_MAX, as in PETR.
    """
    h, w = cfg.image_hw
    stride = h // fh
    n = cfg.depth_bins
    k = np.arange(n)
    bin_size = (DEPTH_MAX - DEPTH_START) / (n * (1 + n))
    depths = DEPTH_START + bin_size * k * (k + 1)
    focal = FOCAL_PER_WIDTH * w
    u = (np.arange(fw) + 0.5) * stride - 0.5
    v = (np.arange(fh) + 0.5) * stride - 0.5
    d, vv, uu = np.meshgrid(depths, v, u, indexing="ij")
    xc, yc = (uu - (w - 1) / 2) * d / focal, (vv - (h - 1) / 2) * d / focal
    lo, hi = np.array(PC_RANGE[:3]), np.array(PC_RANGE[3:])
    out = []
    for yaw_deg in CAMERA_YAWS_DEG:
        yaw = math.radians(yaw_deg)
        fwd, right = (math.cos(yaw), math.sin(yaw)), (math.sin(yaw), -math.cos(yaw))
        x = CAMERA_RADIUS_M * fwd[0] + d * fwd[0] + xc * right[0]
        y = CAMERA_RADIUS_M * fwd[1] + d * fwd[1] + xc * right[1]
        z = CAMERA_HEIGHT_M - yc
        pts = (np.stack([x, y, z], -1) - lo) / (hi - lo)  # [D, fh, fw, 3]
        out.append(_inverse_sigmoid(pts).transpose(0, 3, 1, 2).reshape(n * 3, fh, fw))
    return np.stack(out).astype(np.float32)


def _sine_embed(points: np.ndarray, feats: int, temperature: float = 10000.0) -> np.ndarray:
    """PETR's pos2posemb3d: sin/cos of each coordinate at ``feats`` frequencies."""
    scale = 2 * math.pi
    dim_t = temperature ** (2 * (np.arange(feats) // 2) / feats)
    parts = []
    for axis in (1, 0, 2):  # y, x, z order as in PETR
        p = points[:, axis : axis + 1] * scale / dim_t
        parts.append(np.stack([np.sin(p[:, 0::2]), np.cos(p[:, 1::2])], -1).reshape(len(p), -1))
    return np.concatenate(parts, -1).astype(np.float32)


def _decoder(b: GraphBuilder, cfg: PetrConfig, feats_shape: tuple[int, ...]) -> list[str]:
    feats = b.input("img_feats", feats_shape)
    _, cams, c, fh, fw = feats_shape
    x = L.reshape(b, feats, (cams, c, fh, fw))
    with b.scope("input_proj"):
        x = L.conv(b, x, c, 1, activation=None)
    with b.scope("position_encoder"):
        coords = b.const(frustum_coords(cfg, fh, fw), "coords3d")
        pos = L.conv(b, coords, 4 * c, 1)
        pos = L.conv(b, pos, c, 1, activation=None)
    with b.scope("feature_guided_pe"):
        gate = L.conv(b, L.conv(b, x, c, 1), c, 1, activation="sigmoid")
        pos = L.mul(b, pos, gate)
    tokens = cams * fh * fw
    memory = L.reshape(b, L.transpose(b, x, (0, 2, 3, 1)), (1, tokens, c))
    memory_pos = L.reshape(b, L.transpose(b, pos, (0, 2, 3, 1)), (1, tokens, c))
    with b.scope("query"):
        ref = b.rng.random((QUERIES, 3))
        emb = b.const(_sine_embed(ref, c // 2)[None], "posemb3d")
        query_pos = L.mlp(b, emb, c, c)
        tgt = b.op("ConstantOfShape", [b.ints([1, QUERIES, c])], (1, QUERIES, c))
    y = tgt
    for i in range(cfg.layers):
        with b.scope(f"decoder.layer{i}"):
            y = L.decoder_layer(
                b,
                y,
                memory,
                query_pos=query_pos,
                memory_pos=memory_pos,
                heads=cfg.heads,
                ffn_dim=cfg.ffn,
            )
    with b.scope("decoder.post_norm"):
        y = L.layernorm(b, y)
    with b.scope("cls_branch"):
        cls = y
        for _ in range(2):
            cls = L.act(b, L.layernorm(b, L.linear(b, cls, c)), "relu")
        cls = L.linear(b, cls, CLASSES)
    with b.scope("reg_branch"):
        reg = y
        for _ in range(2):
            reg = L.linear(b, reg, c, activation="relu")
        reg = L.linear(b, reg, CODE_SIZE)
    return [b.output(cls, "cls_scores"), b.output(reg, "bbox_preds")]


def build(size: str, *, seed: int = 0) -> dict[str, onnx.ModelProto]:
    """The two stages of PETRv2-V2-99 at ``size`` (``tiny`` or ``full``)."""
    cfg = CONFIGS[size]
    models: dict[str, onnx.ModelProto] = {}
    b = stage_builder(NAME, "backbone", seed=seed, index=0)
    feats = _backbone(b, cfg)
    models["backbone"] = b.build()
    shape = b.shapes[feats]
    b = stage_builder(NAME, "decoder", seed=seed, index=1)
    _decoder(b, cfg, shape)
    models["decoder"] = b.build()
    return models
