"""Post-processing steps in numpy, for ``custom`` stages of the sample recipes.

Each step is ``step(inputs, **args) -> outputs`` with dicts of numpy arrays, as a custom stage
calls it (:mod:`orinbench.pipeline.custom`). Outputs have fixed shapes every frame (padded where
the number of results varies), because later stages are bound to them by address.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: columns of a decoded box: centre, size, yaw, velocity
BOX_FIELDS: tuple[str, ...] = ("x", "y", "z", "l", "w", "h", "yaw", "vx", "vy")


def decode_boxes(
    inputs: Mapping[str, np.ndarray],
    *,
    max_boxes: int = 100,
    score_threshold: float = 0.1,
    bev_half: float = 54.0,
) -> dict[str, np.ndarray]:
    """Turn a TransFusion/CenterPoint-style box head's proposals into a padded list of boxes.

    Inputs (``K`` proposals, batch 1): ``score`` [1, classes, K] (probabilities), ``reg``
    [1, 2, K] (centre, normalised: tanh maps it to ±``bev_half`` metres), ``height`` [1, 1, K],
    ``dim`` [1, 3, K] (log of l, w, h), ``rot`` [1, 2, K] (sin, cos of yaw), ``vel`` [1, 2, K].

    Each proposal's label is its best class and its score that class's probability. The
    ``max_boxes`` best proposals are kept, best first; those under ``score_threshold`` are zeroed.
    Outputs: ``boxes`` [max_boxes, 9] float32 (columns :data:`BOX_FIELDS`), ``box_scores``
    [max_boxes] float32, ``box_labels`` [max_boxes] int32 (-1 for empty rows), ``box_count`` [1]
    int32 (rows in use).
    """
    score = np.asarray(inputs["score"])[0]  # [classes, K]
    labels = score.argmax(axis=0)
    best = score.max(axis=0)
    k = best.shape[0]
    n = min(max_boxes, k)
    order = np.argsort(-best, kind="stable")[:n]
    keep = best[order] >= score_threshold

    def take(name: str) -> np.ndarray:
        return np.asarray(inputs[name])[0][:, order].astype(np.float32)  # [ch, n]

    reg, height, dim, rot, vel = (take(x) for x in ("reg", "height", "dim", "rot", "vel"))
    cols = [
        np.tanh(reg[0]) * bev_half,
        np.tanh(reg[1]) * bev_half,
        height[0],
        *np.exp(np.clip(dim, -5.0, 5.0)),
        np.arctan2(rot[0], rot[1]),
        vel[0],
        vel[1],
    ]
    boxes = np.zeros((max_boxes, len(BOX_FIELDS)), np.float32)
    boxes[:n] = np.stack(cols, axis=1) * keep[:, None]
    scores = np.zeros(max_boxes, np.float32)
    scores[:n] = np.where(keep, best[order], 0.0)
    out_labels = np.full(max_boxes, -1, np.int32)
    out_labels[:n] = np.where(keep, labels[order], -1)
    # keep the kept rows first (they are: sorted by score, and kept means score >= threshold)
    return {
        "boxes": boxes,
        "box_scores": scores,
        "box_labels": out_labels,
        "box_count": np.array([int(keep.sum())], np.int32),
    }


def topk_heatmap(
    inputs: Mapping[str, np.ndarray], *, k: int = 100, input_name: str = "heatmap"
) -> dict[str, np.ndarray]:
    """Top-``k`` cells of a class heatmap [1, classes, H, W]: ``topk_scores`` [k] float32 and
    ``topk_index`` [k, 3] int32 rows of (class, row, column), best first. The centre-based decoding
    of CenterPoint-style heads (BEVDet) starts with this step."""
    heat = np.asarray(inputs[input_name])[0]
    _, h, w = heat.shape
    flat = heat.reshape(-1)
    k = min(k, flat.size)
    part = np.argpartition(-flat, k - 1)[:k]
    order = part[np.argsort(-flat[part], kind="stable")]
    cls, rem = np.divmod(order, h * w)
    row, col = np.divmod(rem, w)
    return {
        "topk_scores": flat[order].astype(np.float32),
        "topk_index": np.stack([cls, row, col], axis=1).astype(np.int32),
    }
