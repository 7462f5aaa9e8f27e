"""Entropy (KL-divergence) calibration: the clipping threshold of a tensor from its |x| histogram.

The method TensorRT's entropy calibrator uses (Migacz, "8-bit Inference with TensorRT", GTC 2017):
for each candidate threshold ``i`` (in histogram bins, at least :data:`LEVELS`):

* P: the first ``i`` bins, with everything beyond (the values that would be clipped) added to
  the last one, normalised;
* Q: the same ``i`` bins merged into :data:`LEVELS` equal groups (the 128 magnitudes one sign of
  INT8 has), each group's count spread evenly over its non-empty bins, normalised;
* the threshold is the ``i`` that minimises KL(P || Q): clipping rare outliers buys resolution for
  the bulk of the values, until clipping itself costs more.

The first bin (|x| near 0) gets the count of the second before the search. After a ReLU, or in
zero padding, half the values or more are exactly 0; INT8 represents 0 exactly, but left as it
is that spike dominates P and makes Q's spreading of it over its group the largest term of the
divergence, which then favours tiny thresholds (clipping a ReLU output at a fraction of its
range). NVIDIA's pytorch-quantization histogram calibrator does the same.

The search evaluates every :data:`COARSE_STRIDE`-th candidate, then every candidate around the
best one; a full scan of 2048 bins costs ~0.1 s per tensor in numpy, this ~15 ms.
"""

from __future__ import annotations

import numpy as np

#: quantized magnitude levels of symmetric INT8 (one sign)
LEVELS = 128
#: candidate step of the coarse scan, in histogram bins
COARSE_STRIDE = 8
#: floor for Q where P has mass and Q none (only the clipped last bin can be such)
_EPS = 1e-12


def kl_divergence_at(hist: np.ndarray, i: int, *, levels: int = LEVELS) -> float:
    """KL(P || Q) for clipping ``hist`` (counts of |x| in equal bins) after ``i`` bins."""
    h = np.asarray(hist, dtype=np.float64)
    src = h[:i]
    p = src.copy()
    p[-1] += h[i:].sum()
    total_p = p.sum()
    if total_p <= 0:
        return 0.0
    group = (np.arange(i) * levels) // i
    nonzero = src > 0
    group_sum = np.bincount(group, weights=src, minlength=levels)
    group_nonzero = np.bincount(group, weights=nonzero.astype(np.float64), minlength=levels)
    q = np.where(nonzero, group_sum[group] / np.maximum(group_nonzero[group], 1.0), 0.0)
    total_q = q.sum()
    if total_q <= 0:
        return float("inf")
    p /= total_p
    q /= total_q
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], _EPS))))


def entropy_threshold(
    hist: np.ndarray,
    edges: np.ndarray,
    *,
    levels: int = LEVELS,
    stride: int = COARSE_STRIDE,
) -> float:
    """The |x| threshold (an upper bin edge) that minimises KL(P || Q) over ``hist``.

    ``hist`` holds counts of |x| in equal-width bins whose edges are ``edges`` (one more than
    bins, starting at 0). With no more bins than ``levels`` nothing is gained by clipping and the
    last edge (the maximum) is returned.
    """
    h = np.array(hist, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    n = h.size
    if n > 1:
        h[0] = h[1]  # the exact zeros of ReLU outputs must not steer the threshold
    if e.size != n + 1:
        raise ValueError("edges must have one element more than hist")
    if n <= levels or h.sum() <= 0:
        return float(e[-1])
    coarse = sorted({*range(levels, n + 1, max(1, stride)), n})
    scores = {i: kl_divergence_at(h, i, levels=levels) for i in coarse}
    best = min(coarse, key=lambda i: (scores[i], i))
    lo, hi = max(levels, best - stride + 1), min(n, best + stride - 1)
    for i in range(lo, hi + 1):
        if i not in scores:
            scores[i] = kl_divergence_at(h, i, levels=levels)
    best = min(range(lo, hi + 1), key=lambda i: (scores[i], i))
    return float(e[best])
