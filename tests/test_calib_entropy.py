"""Entropy (KL) calibration thresholds on distributions whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from orinbench.calib.entropy import entropy_threshold, kl_divergence_at


def _hist(values: np.ndarray, bins: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    return np.histogram(np.abs(values), bins=bins, range=(0.0, float(np.abs(values).max())))


def test_a_far_outlier_is_clipped_and_the_bulk_kept() -> None:
    rng = np.random.default_rng(0)
    x = np.append(rng.standard_normal(200_000), 40.0)
    t = entropy_threshold(*_hist(x))
    assert 3.0 < t < 8.0  # the Gaussian bulk (|x| < ~4.5) stays, the lone 40 is clipped


def test_uniform_data_is_not_clipped() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, 200_000)
    hist, edges = _hist(x)
    assert entropy_threshold(hist, edges) == pytest.approx(edges[-1], rel=0.01)


def test_relu_zeros_do_not_drag_the_threshold_down() -> None:
    x = np.maximum(np.random.default_rng(2).standard_normal(400_000), 0.0)  # half exact zeros
    hist, edges = _hist(x)
    assert entropy_threshold(hist, edges) > 0.6 * edges[-1]


def test_heavier_tails_are_clipped_harder() -> None:
    rng = np.random.default_rng(3)
    gauss = _hist(rng.standard_normal(300_000))
    laplace = _hist(rng.laplace(size=300_000))
    fraction = [entropy_threshold(h, e) / e[-1] for h, e in (gauss, laplace)]
    assert fraction[1] < fraction[0]


def test_few_bins_return_the_maximum_and_bad_edges_are_rejected() -> None:
    hist = np.array([5, 3, 1, 1], np.int64)
    edges = np.linspace(0, 4, 5)
    assert entropy_threshold(hist, edges) == 4.0
    with pytest.raises(ValueError, match="one element more"):
        entropy_threshold(hist, edges[:-1])


def test_kl_is_zero_when_q_reproduces_p() -> None:
    # 256 bins, flat, no tail: merging pairs into 128 groups and spreading back is lossless
    assert kl_divergence_at(np.ones(256), 256) == pytest.approx(0.0, abs=1e-12)
    # clipping a tail that holds mass costs divergence
    h = np.ones(512)
    assert kl_divergence_at(h, 256) > kl_divergence_at(h, 512)
