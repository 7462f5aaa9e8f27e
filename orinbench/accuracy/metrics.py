"""Output-comparison metrics between a reference (FP32) and a candidate (INT8/FP16) output.

All metrics are computed in float64 on the flattened arrays of one sample:

* cosine similarity  ``<r, c> / (|r| |c|)``; 1.0 when both are all zero, 0.0 when only one is;
* max absolute error ``max |c - r|``;
* relative L2 error  ``|c - r| / |r|`` (``|c - r| / eps`` guarded: 0.0 when both are zero, inf
  when only the reference is);
* top-k peak agreement, for heatmap outputs (CenterPoint-style detection heads): the peaks of a
  heatmap are its local maxima under a 3x3 window (the max-pool NMS of CenterPoint's decoder) over
  the last two axes; the ``k`` highest of the reference and of the candidate are taken, and the
  agreement is the fraction of the reference's peaks (class/channel, y, x) that the candidate
  also has among its top k.
"""

from __future__ import annotations

import math

import numpy as np

#: default number of heatmap peaks compared (nuScenes frames hold a few dozen objects)
DEFAULT_TOPK = 100
#: window of the peak NMS, as in CenterPoint's decoder
NMS_KERNEL = 3


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).ravel()


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> float:
    r, c = _flat(reference), _flat(candidate)
    nr, nc = float(np.linalg.norm(r)), float(np.linalg.norm(c))
    if nr == 0.0 and nc == 0.0:
        return 1.0
    if nr == 0.0 or nc == 0.0:
        return 0.0
    return float(np.clip(np.dot(r, c) / (nr * nc), -1.0, 1.0))


def max_abs_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    r, c = _flat(reference), _flat(candidate)
    return float(np.max(np.abs(c - r))) if r.size else 0.0


def rel_l2_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    r, c = _flat(reference), _flat(candidate)
    err = float(np.linalg.norm(c - r))
    ref = float(np.linalg.norm(r))
    if ref == 0.0:
        return 0.0 if err == 0.0 else math.inf
    return err / ref


def local_maxima(heatmap: np.ndarray, kernel: int = NMS_KERNEL) -> np.ndarray:
    """Boolean mask of the cells equal to the max of their ``kernel`` x ``kernel`` window."""
    h = np.asarray(heatmap, dtype=np.float64)
    if h.ndim < 2:
        raise ValueError("a heatmap needs at least two (spatial) axes")
    pad = kernel // 2
    widths = [(0, 0)] * (h.ndim - 2) + [(pad, pad), (pad, pad)]
    padded = np.pad(h, widths, mode="constant", constant_values=-np.inf)
    rows, cols = h.shape[-2], h.shape[-1]
    best = np.full(h.shape, -np.inf)
    for dy in range(kernel):
        for dx in range(kernel):
            np.maximum(best, padded[..., dy : dy + rows, dx : dx + cols], out=best)
    return h >= best


def topk_peaks(heatmap: np.ndarray, k: int = DEFAULT_TOPK) -> set[tuple[int, ...]]:
    """Indices (into ``heatmap``) of its ``k`` highest local maxima; ties broken by index."""
    h = np.asarray(heatmap, dtype=np.float64)
    mask = local_maxima(h)
    flat_idx = np.flatnonzero(mask)
    if flat_idx.size == 0:
        return set()
    scores = h.ravel()[flat_idx]
    # stable sort on -score: equal scores keep index order, so the result is deterministic
    order = np.argsort(-scores, kind="stable")[:k]
    chosen = flat_idx[order]
    return {tuple(int(i) for i in np.unravel_index(j, h.shape)) for j in chosen}


def topk_agreement(reference: np.ndarray, candidate: np.ndarray, k: int = DEFAULT_TOPK) -> float:
    """Fraction of the reference's top-``k`` heatmap peaks that the candidate's top ``k`` hold."""
    ref = topk_peaks(reference, k)
    if not ref:
        return 1.0
    return len(ref & topk_peaks(candidate, k)) / len(ref)


def is_heatmap_name(name: str) -> bool:
    """Default rule for heatmap outputs: the name says so (``heatmap``, ``hm``, ``heat``)."""
    low = name.lower()
    return "heatmap" in low or low in ("hm", "heat") or low.endswith(("_hm", ".hm", "/hm"))
