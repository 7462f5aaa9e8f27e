"""Output-comparison metrics on arrays whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orinbench.accuracy.metrics import (
    cosine_similarity,
    is_heatmap_name,
    local_maxima,
    max_abs_error,
    rel_l2_error,
    topk_agreement,
    topk_peaks,
)


def test_cosine() -> None:
    a = np.array([1.0, 0.0, 0.0], np.float32)
    assert cosine_similarity(a, a * 3) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 2.0, 0.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(
        1 / math.sqrt(2)
    )
    zero = np.zeros(3)
    assert cosine_similarity(zero, zero) == 1.0
    assert cosine_similarity(zero, a) == 0.0


def test_max_abs_and_rel_l2() -> None:
    r = np.array([[3.0, 4.0]], np.float32)  # |r| = 5
    c = np.array([[3.0, 4.5]], np.float32)
    assert max_abs_error(r, c) == pytest.approx(0.5)
    assert rel_l2_error(r, c) == pytest.approx(0.1)
    assert rel_l2_error(r, r * 1.03) == pytest.approx(0.03, rel=1e-6)
    assert rel_l2_error(np.zeros(2), np.zeros(2)) == 0.0
    assert rel_l2_error(np.zeros(2), np.ones(2)) == math.inf


def test_local_maxima_use_a_3x3_window_per_channel() -> None:
    h = np.zeros((2, 5, 5))
    h[0, 1, 1] = 0.9  # peak
    h[0, 1, 2] = 0.8  # beside a higher cell: not a peak
    h[0, 3, 4] = 0.7  # peak at the border
    h[1, 1, 2] = 0.5  # other channel: its own peak, even next to channel 0's
    mask = local_maxima(h)
    assert mask[0, 1, 1] and mask[0, 3, 4] and mask[1, 1, 2]
    assert not mask[0, 1, 2]


def test_topk_peaks_are_the_highest_local_maxima() -> None:
    h = np.zeros((1, 1, 8, 8))
    h[0, 0, 1, 1], h[0, 0, 1, 6], h[0, 0, 6, 1], h[0, 0, 6, 6] = 0.9, 0.8, 0.7, 0.6
    h[0, 0, 1, 2] = 0.85  # suppressed by its neighbour 0.9
    assert topk_peaks(h, 2) == {(0, 0, 1, 1), (0, 0, 1, 6)}
    assert len(topk_peaks(h, 4)) == 4


def test_topk_agreement_counts_reference_peaks_found_by_the_candidate() -> None:
    ref = np.zeros((1, 2, 8, 8))
    ref[0, 0, 1, 1], ref[0, 0, 5, 5], ref[0, 1, 2, 6], ref[0, 1, 6, 2] = 0.9, 0.8, 0.7, 0.6
    assert topk_agreement(ref, ref.copy(), 4) == 1.0
    moved = ref.copy()
    moved[0, 1, 6, 2] = 0.0
    moved[0, 1, 6, 3] = 0.6  # one object one cell off
    assert topk_agreement(ref, moved, 4) == pytest.approx(0.75)
    # small noise that keeps the ranking keeps the agreement
    noisy = ref + np.random.default_rng(0).normal(0, 1e-4, ref.shape)
    assert topk_agreement(ref, np.maximum(noisy, 0), 3) == 1.0


def test_heatmap_names() -> None:
    assert is_heatmap_name("heatmap") and is_heatmap_name("det_heatmap_0") and is_heatmap_name("hm")
    assert not is_heatmap_name("boxes") and not is_heatmap_name("map_seg")
