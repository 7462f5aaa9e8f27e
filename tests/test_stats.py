"""orinbench.bench.stats: summaries, order-statistic intervals, tests and quality warnings.

scipy is used here only to cross-check the numpy implementations.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
import scipy.stats

from orinbench.bench import stats
from orinbench.bench.stats import (
    bootstrap_ratio_ci,
    ci_relative_halfwidth,
    is_stable,
    mann_whitney_u,
    min_samples_for_percentile,
    order_statistic_ci,
    percentile_ci,
    quality_warnings,
    summarize,
)
from orinbench.errors import OrinbenchError, UsageError


def lognormal(n: int, *, seed: int, median: float = 20.0, sigma: float = 0.05) -> np.ndarray:
    return median * np.exp(sigma * np.random.default_rng(seed).standard_normal(n))


# -- summarize ---------------------------------------------------------------------------------


def test_summarize_matches_numpy_definitions() -> None:
    x = lognormal(1000, seed=1, sigma=0.2)
    s = summarize(list(x))
    assert s.count == 1000
    assert s.min_ms == x.min() and s.max_ms == x.max()
    assert s.mean_ms == pytest.approx(x.mean())
    assert s.std_ms == pytest.approx(x.std(ddof=1))
    assert s.cv == pytest.approx(x.std(ddof=1) / x.mean())
    for p, key in [
        (50, "p50_ms"),
        (90, "p90_ms"),
        (95, "p95_ms"),
        (99, "p99_ms"),
        (99.9, "p99_9_ms"),
    ]:
        assert getattr(s, key) == pytest.approx(np.percentile(x, p, method="linear"))


def test_summary_dict_has_the_documented_keys_and_is_strict_json() -> None:
    d = summarize(lognormal(100, seed=2)).to_dict()
    assert set(d) == {
        "count", "min_ms", "max_ms", "mean_ms", "std_ms", "cv",
        "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "ci",
    }  # fmt: skip
    assert set(d["ci"]) == {"p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "confidence"}
    assert d["ci"]["confidence"] == 0.95
    # 100 samples: no distribution-free interval for P99 or P99.9
    assert d["ci"]["p99_ms"] is None and d["ci"]["p99_9_ms"] is None
    lo, hi = d["ci"]["p50_ms"]
    assert lo <= d["p50_ms"] <= hi
    json.dumps(d, allow_nan=False)


def test_single_sample_summary_is_finite() -> None:
    d = summarize([5.0]).to_dict()
    assert d["std_ms"] == 0.0 and d["p99_ms"] == 5.0
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_refuses_empty_or_non_finite(bad: list[float]) -> None:
    with pytest.raises(OrinbenchError):
        summarize(bad)


# -- order statistic intervals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "q", "conf"),
    [(10, 0.5, 0.95), (100, 0.5, 0.95), (100, 0.9, 0.95), (1000, 0.99, 0.95), (500, 0.95, 0.99),
     (5000, 0.999, 0.95), (37, 0.25, 0.9)],
)  # fmt: skip
def test_order_statistic_ranks_agree_with_scipy_binomial(n: int, q: float, conf: float) -> None:
    ranks = order_statistic_ci(n, q, conf)
    assert ranks is not None
    lo, hi = ranks
    half = (1 - conf) / 2
    b = scipy.stats.binom(n, q)
    # lower rank: the largest l with P(K <= l-1) <= alpha/2
    assert b.cdf(lo - 1) <= half + 1e-12
    assert lo == n or b.cdf(lo) > half
    # upper rank: the smallest u with P(K >= u) <= alpha/2
    assert b.sf(hi - 1) <= half + 1e-12
    assert hi == 1 or b.sf(hi - 2) > half
    assert b.cdf(hi - 1) - b.cdf(lo - 1) >= conf - 1e-12


def test_median_interval_covers_the_true_median_at_the_stated_rate() -> None:
    rng = np.random.default_rng(7)
    true_median = math.log(2.0)  # exponential(1)
    trials = 400
    hits = 0
    for _ in range(trials):
        ci = percentile_ci(rng.exponential(1.0, 60), 50)
        assert ci is not None
        hits += ci[0] <= true_median <= ci[1]
    # exact coverage is >= 95 %; allow for simulation noise (sd ~1.1 %)
    assert hits / trials >= 0.92


def test_min_samples_is_the_first_n_with_an_interval() -> None:
    for conf in (0.9, 0.95, 0.99):
        for q in (0.5, 0.9, 0.95, 0.99, 0.999, 0.1):
            n = min_samples_for_percentile(q, conf)
            assert order_statistic_ci(n, q, conf) is not None
            assert order_statistic_ci(n - 1, q, conf) is None


def test_min_samples_docstring_numbers_equal_the_code() -> None:
    doc = min_samples_for_percentile.__doc__ or ""
    pairs = re.findall(r"P(\d+(?:\.\d+)?) (?:needs )?(\d+)", doc)
    assert len(pairs) == 5
    for p, n in pairs:
        assert min_samples_for_percentile(float(p) / 100, 0.95) == int(n)


def test_summary_interval_appears_exactly_at_min_samples() -> None:
    need = min_samples_for_percentile(0.99)
    assert summarize(lognormal(need - 1, seed=3)).ci["p99_ms"] is None
    assert summarize(lognormal(need, seed=3)).ci["p99_ms"] is not None


def test_ci_relative_halfwidth() -> None:
    x = lognormal(400, seed=4)
    lo, hi = percentile_ci(x, 50)  # type: ignore[misc]
    assert ci_relative_halfwidth(x, 50) == pytest.approx((hi - lo) / 2 / np.median(x))
    assert ci_relative_halfwidth([1.0, 2.0, 3.0], 50) is None
    # units cancel: nanoseconds give the same relative width as milliseconds
    assert ci_relative_halfwidth(x * 1e6, 50) == pytest.approx(ci_relative_halfwidth(x, 50))
    # it narrows with more samples
    assert ci_relative_halfwidth(lognormal(10000, seed=4), 50) < ci_relative_halfwidth(x, 50)


def test_is_stable() -> None:
    flat = lognormal(200, seed=5, sigma=0.01)
    assert is_stable(flat, rel_tol=0.02)
    stepped = np.concatenate([flat[:100], flat[100:] * 1.1])
    assert not is_stable(stepped, rel_tol=0.02)
    assert is_stable(stepped, rel_tol=0.2)
    assert not is_stable([1.0], rel_tol=0.5)
    assert not is_stable(flat[:10], rel_tol=0.02, k=6)


# -- Mann–Whitney -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(8, 300, size=2)
    a = rng.lognormal(0.0, 0.3, n1)
    b = rng.lognormal(0.05 * seed, 0.3, n2)
    if seed % 2:  # heavy ties
        a, b = np.round(a, 1), np.round(b, 1)
    mine = mann_whitney_u(a, b)
    ref = scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    assert mine.u == pytest.approx(float(ref.statistic), rel=1e-12)
    assert mine.p_value == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-300)
    # common-language effect size by brute force over all pairs
    diff = b[:, None] - a[None, :]
    cles = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert mine.effect == pytest.approx(cles, rel=1e-12)
    assert math.copysign(1.0, mine.z) == math.copysign(1.0, mine.u - n1 * n2 / 2) or mine.z == 0


def test_mann_whitney_degenerate_and_direction() -> None:
    same = mann_whitney_u([3.0] * 20, [3.0] * 30)
    assert same.p_value == 1.0 and same.effect == 0.5
    slow = mann_whitney_u(lognormal(200, seed=1), lognormal(200, seed=2) * 1.1)
    assert slow.p_value < 1e-6 and slow.effect > 0.9 and slow.z < 0


# -- bootstrap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 2.5, 33.3, 50.0, 90.0, 99.0, 100.0])
def test_bootstrap_percentiles_follow_the_naive_resampling_distribution(q: float) -> None:
    # the O(1) order-statistic draw must have the distribution of np.percentile on resamples
    x = np.sort(lognormal(41, seed=1, sigma=0.3))
    fast = stats._bootstrap_percentiles(x, q, 20000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, x.size, (20000, x.size))
    naive = np.percentile(x[idx], q, axis=1)
    # rounding: both interpolate between the same order statistics, up to float noise
    assert scipy.stats.ks_2samp(fast.round(9), naive.round(9)).pvalue > 1e-3
    assert np.isin(fast.round(9), naive.round(9)).mean() > 0.99


def test_bootstrap_ci_matches_a_naive_bootstrap() -> None:
    a, b = lognormal(300, seed=1, sigma=0.2), lognormal(200, seed=2, sigma=0.2) * 1.05
    got = bootstrap_ratio_ci(a, b, q=90, n_resamples=20000)
    rng = np.random.default_rng(3)
    ra = np.percentile(a[rng.integers(0, a.size, (20000, a.size))], 90, axis=1)
    rb = np.percentile(b[rng.integers(0, b.size, (20000, b.size))], 90, axis=1)
    want = np.quantile(rb / ra, [0.025, 0.975])
    assert got == pytest.approx(tuple(want), rel=0.01)


def test_bootstrap_ci_finds_a_ten_percent_shift_and_is_repeatable() -> None:
    a, b = lognormal(3000, seed=1), lognormal(3000, seed=2) * 1.10
    lo, hi = bootstrap_ratio_ci(a, b, q=99)
    assert 1.05 < lo < 1.10 < hi < 1.15
    assert bootstrap_ratio_ci(a, b, q=99) == (lo, hi)
    assert bootstrap_ratio_ci(a, b, q=99, seed=1) != (lo, hi)
    lo0, hi0 = bootstrap_ratio_ci(a, lognormal(3000, seed=3), q=50)
    assert lo0 < 1.0 < hi0


# -- quality warnings ---------------------------------------------------------------------------


def codes(x: np.ndarray, **kw: float) -> list[str]:
    return [w.code for w in quality_warnings(x, **kw)]


def test_clean_long_run_has_no_warnings() -> None:
    assert codes(lognormal(5000, seed=1)) == []


def test_few_samples_names_the_percentile_and_the_count_needed() -> None:
    (w,) = quality_warnings(lognormal(100, seed=1))
    assert w.code == "few-samples"
    assert "P99 (needs 368)" in w.message and "P99.9 (needs 3688)" in w.message
    assert "P95" not in w.message
    assert codes(lognormal(100, seed=1), percentiles=(50, 90)) == []


def test_high_variation_threshold() -> None:
    noisy = lognormal(5000, seed=2, sigma=0.3)
    assert "high-variation" in codes(noisy)
    assert "high-variation" not in codes(noisy, cv_threshold=0.5)


def test_drift_needs_both_a_large_and_a_significant_change() -> None:
    rng = np.random.default_rng(3)
    trend = np.linspace(20.0, 23.0, 4000) * np.exp(0.02 * rng.standard_normal(4000))
    found = [w for w in quality_warnings(trend) if w.code == "drift"]
    assert len(found) == 1 and "slower" in found[0].message and "%" in found[0].message
    # same trend, higher threshold: a 15 % change is below 20 %
    assert "drift" not in codes(trend, drift_threshold=0.2)
    # large noise, no trend: medians of the quarters agree
    assert "drift" not in codes(lognormal(4000, seed=3, sigma=0.3))


def test_outliers() -> None:
    x = lognormal(5000, seed=4)
    x[::20] *= 3.0  # 5 % spikes
    assert "outliers" in codes(x)


# -- change points ------------------------------------------------------------------------------


def test_change_points_find_known_steps() -> None:
    rng = np.random.default_rng(0)
    levels = np.repeat([20.0, 23.0, 21.0], [40, 35, 45])
    series = levels + rng.normal(0.0, 0.5, levels.size)
    found = stats.change_points(series)
    assert len(found) == 2
    assert abs(found[0] - 40) <= 2 and abs(found[1] - 75) <= 2


@pytest.mark.parametrize("n", [20, 60, 200])
def test_change_points_ignore_pure_noise(n: int) -> None:
    for seed in range(20):
        series = 20.0 + np.random.default_rng(seed).normal(0.0, 0.5, n)
        assert stats.change_points(series) == [], seed


def test_change_points_edge_cases() -> None:
    assert stats.change_points([5.0] * 30) == []
    assert stats.change_points([1.0, 2.0]) == []
    # a step in quantised data (MAD of the differences is 0)
    assert stats.change_points([1.0] * 10 + [2.0] * 10) == [10]
    # no segment is shorter than min_size, even where the true step is closer to the end
    series = [1.0] * 10 + [2.0] * 2
    for min_size in (1, 3, 5):
        cuts = [0, *stats.change_points(series, min_size=min_size), len(series)]
        assert min(np.diff(cuts)) >= min_size
    assert stats.change_points(series, min_size=1) == [10]
    with pytest.raises(OrinbenchError):
        stats.change_points([1.0, 2.0], min_size=0)


def test_docstring_defaults_equal_the_constants() -> None:
    qdoc = quality_warnings.__doc__ or ""
    assert f"(default {stats.CV_THRESHOLD:.2f})" in qdoc
    assert f"(default {stats.DRIFT_THRESHOLD:.2f}, relative to the first)" in qdoc
    assert f"(default {stats.DRIFT_ALPHA:.2f})" in qdoc
    assert f"Needs {stats.DRIFT_MIN_PART} samples in each quarter" in qdoc
    assert stats.DRIFT_FRACTION == 0.25
    assert f"more than {stats.OUTLIER_FRACTION:.0%}".replace("%", " %") in qdoc
    assert f"Q3 + {stats.OUTLIER_FENCE:g}·IQR" in qdoc
    assert f"(default {stats.CHANGE_POINT_THRESHOLD:g})" in (stats.change_points.__doc__ or "")
    assert f"{stats.MAD_TO_SIGMA} · MAD" in (stats.robust_noise_sigma.__doc__ or "")


def test_stats_and_gate_run_without_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'scipy':\n"
        "            raise ImportError('scipy blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import orinbench.gate, orinbench.cli.gate_cmd, orinbench.cli.baseline_cmd\n"
        "from orinbench.bench.stats import summarize, mann_whitney_u\n"
        "summarize([1.0, 2.0, 3.0]); mann_whitney_u([1.0, 2.0], [3.0, 4.0])\n"
        "assert not [m for m in sys.modules if m.startswith('scipy')]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- pinned by mutation testing (benchmarks/mutate.py) ------------------------------------------


def _scipy_ranks(n: int, q: float, conf: float) -> tuple[int, int] | None:
    """Equal-tailed order-statistic ranks from scipy's binomial, independent of the module."""
    half = (1.0 - conf) / 2.0
    r = np.arange(1, n + 1)
    lows = r[scipy.stats.binom.cdf(r - 1, n, q) <= half]
    highs = r[scipy.stats.binom.sf(r - 1, n, q) <= half]
    return (int(lows.max()), int(highs.min())) if lows.size and highs.size else None


def test_summary_stores_the_order_statistics_of_the_intervals() -> None:
    # hand derivation, n = 10, P50, 95 %: P(K <= 1) = 11/1024 <= 0.025 < P(K <= 2) = 56/1024,
    # so l = 2; P(K >= 9) = 11/1024 <= 0.025 < P(K >= 8), so u = 9
    s = summarize([10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0])
    assert s.ci["p50_ms"] == (2.0, 9.0)
    assert s.ci["p90_ms"] is None and s.ci["p99_ms"] is None
    assert s.to_dict()["ci"]["p50_ms"] == [2.0, 9.0]
    # and the stored values for every percentile of a long run, against scipy's binomial
    x = lognormal(5000, seed=3)
    srt = np.sort(x)
    for conf in (0.95, 0.9):
        got = summarize(x, confidence=conf)
        for p in stats.PERCENTILES:
            ranks = _scipy_ranks(5000, p / 100.0, conf)
            key = "p" + f"{p:g}".replace(".", "_") + "_ms"
            want = None if ranks is None else (srt[ranks[0] - 1], srt[ranks[1] - 1])
            assert got.ci[key] == want, (conf, p)
    assert percentile_ci(x, 99.0) == summarize(x).ci["p99_ms"]


def test_percentile_ci_values_match_scipy_ranks() -> None:
    x = lognormal(500, seed=4)
    srt = np.sort(x)
    for q in (50.0, 90.0, 95.0, 99.0):
        ranks = _scipy_ranks(500, q / 100.0, 0.95)
        assert ranks is not None
        assert percentile_ci(x, q) == (srt[ranks[0] - 1], srt[ranks[1] - 1]), q


def _tukey(extras: list[float]) -> list[str]:
    # Q1 = 10 and Q3 = 12 exactly (linear percentiles of 49 tens and 49 twelves plus the extras
    # at the ends), so IQR = 2 and the far fences are 4 and 18
    return codes(np.array([10.0] * 49 + [12.0] * 49 + extras))


def test_outlier_fences_are_three_iqr_and_one_percent() -> None:
    assert "outliers" not in _tukey([18.0, 18.0])  # on the fence is not beyond it
    assert "outliers" in _tukey([18.001, 18.001])  # 2 of 100 beyond: more than 1 %
    assert "outliers" not in _tukey([16.0, 16.0])  # beyond 1.5 IQR but not 3 IQR
    assert "outliers" not in _tukey([4.0, 4.0])
    assert "outliers" in _tukey([3.999, 3.999])
    assert "outliers" not in _tukey([12.0, 100.0])  # 1 of 100 is exactly 1 %: not more
    x = np.array([10.0] * 49 + [12.0] * 49 + [30.0] * 2)
    (w,) = [w for w in stats.quality_warnings(x) if w.code == "outliers"]
    assert w.message.startswith("2 of 100 samples (2.0%) lie beyond 3·IQR of the quartiles (max 30")


def test_drift_compares_the_first_and_the_last_quarter() -> None:
    rng = np.random.default_rng(0)
    noise = lambda n: rng.normal(0.0, 0.05, n)  # noqa: E731
    # the last quarter (25 samples) holds 13 slow ones, then 12 normal ones: its median is slow,
    # while the last eighth alone would be all normal
    x = np.concatenate([10 + noise(75), 12 + noise(13), 10 + noise(12)])
    (w,) = [w for w in stats.quality_warnings(x, percentiles=(50.0,)) if w.code == "drift"]
    first, last = np.median(x[:25]), np.median(x[-25:])
    assert f"median {last:.4g} ms vs {first:.4g} ms" in w.message
    assert f"is {(last - first) / first:.1%} slower" in w.message
    # 40 samples: 10 a quarter, just enough for the check
    x40 = np.concatenate([10 + noise(30), 12 + noise(10)])
    assert "drift" in codes(x40)
    assert "drift" not in codes(x40[1:])  # 39: 9 a quarter, too few
    # a 4 % change is within the 5 % threshold, however significant
    assert "drift" not in codes(np.concatenate([10 + noise(75), 10.4 + noise(25)]))


def test_high_variation_is_above_ten_percent() -> None:
    x = lognormal(2000, seed=1, sigma=0.07)
    cv = float(np.std(x, ddof=1) / np.mean(x))
    assert 0.05 < cv < 0.10
    assert "high-variation" not in codes(x)


def test_noise_sigma_is_the_scaled_mad_of_the_differences() -> None:
    # differences 1, 2, 3, 4: median 2.5, absolute deviations 1.5, .5, .5, 1.5, MAD 1
    assert stats.robust_noise_sigma([0.0, 1.0, 3.0, 6.0, 10.0]) == pytest.approx(
        1.4826 / math.sqrt(2.0), rel=1e-12
    )
    # quantised: MAD 0, so std of the differences (0, 0, 0, 5, 0, 0) / sqrt 2
    want = math.sqrt(25.0 / 6.0 - (5.0 / 6.0) ** 2) / math.sqrt(2.0)
    assert stats.robust_noise_sigma([0.0] * 4 + [5.0] * 3) == pytest.approx(want, rel=1e-12)
    assert stats.robust_noise_sigma([1.0, 2.0]) == 0.0
    assert stats.robust_noise_sigma([3.0] * 10) == 0.0


def test_segmentation_searches_both_sides_of_a_change() -> None:
    rng = np.random.default_rng(0)
    # the large step (at 60) is found first; the small one (at 30) lies to its left
    left = np.concatenate([np.zeros(30), np.full(30, 5.0), np.full(30, 20.0)])
    assert stats.change_points(left + rng.normal(0.0, 0.5, 90)) == [30, 60]
    # and mirrored: the small one to the right of the large one
    right = np.concatenate([np.zeros(30), np.full(30, 15.0), np.full(30, 20.0)])
    assert stats.change_points(right + rng.normal(0.0, 0.5, 90)) == [30, 60]


def test_a_step_min_size_from_either_end_is_found() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([np.full(3, 10.0), np.zeros(27)]) + rng.normal(0.0, 0.1, 30)
    assert stats.change_points(x) == [3]
    y = np.concatenate([np.zeros(27), np.full(3, 10.0)]) + rng.normal(0.0, 0.1, 30)
    assert stats.change_points(y) == [27]


def test_drift_significance_level_is_one_percent() -> None:
    # seed 55: the quarters differ by 6 % and Mann–Whitney gives p = 0.0074, between 0.005 and
    # 0.01 (scipy's figure): drift at the 1 % level
    rng = np.random.default_rng(55)
    first, mid = 10 + rng.normal(0, 0.6, 25), 10 + rng.normal(0, 0.6, 50)
    last = 10.7 + rng.normal(0, 0.6, 25)
    p = scipy.stats.mannwhitneyu(first, last, method="asymptotic").pvalue
    assert 0.005 < p < 0.01
    assert "drift" in codes(np.concatenate([first, mid, last]))


def test_binomial_cdf_against_scipy_and_at_the_ends() -> None:
    from orinbench.bench.stats import _binom_cdf

    got = _binom_cdf(7, 0.3)
    assert got.shape == (8,)
    np.testing.assert_allclose(got, scipy.stats.binom.cdf(np.arange(8), 7, 0.3), rtol=1e-12)
    assert _binom_cdf(4, 0.0).tolist() == [1.0] * 5
    assert _binom_cdf(4, 1.0).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_interval_ranks_where_the_tail_equals_alpha_half() -> None:
    # n = 2, P50, 50 %: P(K <= 0) = 1/4 = alpha/2 and P(K >= 2) = 1/4: ranks 1 and 2
    assert order_statistic_ci(2, 0.5, 0.5) == (1, 2)
    # and the count needed: 0.5**2 = 1/4 <= 1/4, so 2 samples
    assert min_samples_for_percentile(0.5, 0.5) == 2
    # 1 - 2**-28: the logarithms give 30, the exact answer is 29 (0.5**29 = 2**-29 = alpha/2)
    assert min_samples_for_percentile(0.5, 1.0 - 2.0**-28) == 29


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_quantile_and_confidence_out_of_range_are_refused(bad: float) -> None:
    with pytest.raises(OrinbenchError, match="quantile"):
        order_statistic_ci(10, bad, 0.95)
    with pytest.raises(OrinbenchError, match="quantile"):
        min_samples_for_percentile(bad)
    with pytest.raises(OrinbenchError, match="confidence"):
        order_statistic_ci(10, 0.5, bad)
    with pytest.raises(OrinbenchError, match="confidence"):
        min_samples_for_percentile(0.5, bad)
    with pytest.raises(OrinbenchError, match="confidence"):
        summarize([1.0, 2.0], confidence=bad)
    with pytest.raises(OrinbenchError, match="confidence"):
        summarize([], confidence=bad)  # the level is checked first


def test_summary_spread_of_two_samples_and_a_zero_mean() -> None:
    s = summarize([1.0, 3.0])
    assert s.std_ms == pytest.approx(math.sqrt(2.0)) and s.cv == pytest.approx(math.sqrt(2.0) / 2)
    assert summarize([0.5, 1.5]).cv == pytest.approx(math.sqrt(0.5))  # mean exactly 1
    assert summarize([-1.0, 1.0]).cv == 0.0  # mean 0: no CV


def test_ci_relative_halfwidth_of_the_median_by_default() -> None:
    x = lognormal(200, seed=6)
    srt = np.sort(x)
    lo, hi = _scipy_ranks(200, 0.5, 0.95) or (0, 0)
    want = (srt[hi - 1] - srt[lo - 1]) / 2.0 / float(np.median(x))
    assert ci_relative_halfwidth(x) == pytest.approx(want, rel=1e-12)
    # a median of 0 has no relative width
    assert ci_relative_halfwidth(np.arange(-50.0, 51.0)) is None


def test_is_stable_windows_and_tolerance() -> None:
    assert stats.is_stable([1.0, 1.015]) is True  # 1.5 % apart, within the default 2 %
    assert stats.is_stable([1.0, 1.025]) is False
    assert stats.is_stable([1.0, 1.25], rel_tol=0.25) is True  # exactly at the tolerance
    assert stats.is_stable([1.0, 1.0], k=1) is True
    assert stats.is_stable([1.0]) is False and stats.is_stable([1.0, 1.0], k=0) is False
    # the last k against the k before them, whatever comes earlier
    assert stats.is_stable([1.0, 5.0, 1.0, 1.0], k=1) is True
    assert stats.is_stable([1.0, 9.0, 9.0, 1.0], k=1) is False


def test_mann_whitney_small_samples_against_scipy_and_by_hand() -> None:
    # a = [1], b = [2, 3]: U = 0, mu = 1, sigma^2 = 2/12 * 4, z = -(1 - 1/2) / sigma
    mw = mann_whitney_u([1.0], [2.0, 3.0])
    assert mw.u == 0.0 and mw.effect == 1.0
    assert mw.z == pytest.approx(-0.5 / math.sqrt(2.0 / 3.0), rel=1e-12)
    ref = scipy.stats.mannwhitneyu([1.0], [2.0, 3.0], method="asymptotic").pvalue
    assert mw.p_value == pytest.approx(ref, rel=1e-12)
    same = mann_whitney_u([1.0, 1.0], [1.0, 1.0])  # all tied: no variance
    assert (same.z, same.p_value, same.effect) == (0.0, 1.0, 0.5)


def test_bootstrap_defaults_and_refusals() -> None:
    a = np.linspace(1.0, 100.0, 2000)
    b = np.where(a > 40, 2.0 * a, a)  # P25 unchanged, P50 doubled
    lo, hi = bootstrap_ratio_ci(a, b)  # the median by default
    assert 1.5 < lo <= hi
    assert bootstrap_ratio_ci(a, b, q=25.0)[1] < 1.5
    assert bootstrap_ratio_ci(a, b) == bootstrap_ratio_ci(a, b, q=50.0, n_resamples=2000)
    assert bootstrap_ratio_ci(a, b, q=0.0) and bootstrap_ratio_ci(a, b, q=100.0)  # the ends
    assert bootstrap_ratio_ci(a, b, q=0.5) and bootstrap_ratio_ci(a, b, n_resamples=10)
    small = np.full(20, 0.5)  # a positive baseline below 1 is fine
    assert bootstrap_ratio_ci(small, small) == (1.0, 1.0)
    for kw in ({"q": -0.1}, {"q": 100.1}, {"n_resamples": 9}, {"confidence": 1.0}):
        with pytest.raises(OrinbenchError):
            bootstrap_ratio_ci(a, b, **kw)  # type: ignore[arg-type]
    with pytest.raises(OrinbenchError, match="the bootstrap ratio is undefined"):
        bootstrap_ratio_ci(np.zeros(20), b[:20])


def test_few_samples_at_exactly_the_count_needed() -> None:
    assert "few-samples" not in codes(lognormal(368, seed=1), percentiles=(99.0,))
    assert "few-samples" in codes(lognormal(367, seed=1), percentiles=(99.0,))


def test_high_variation_edge_cases() -> None:
    (w,) = [w for w in quality_warnings([1.0, 3.0]) if w.code == "high-variation"]
    assert w.message.startswith("coefficient of variation 70.7% exceeds 10%")
    assert "high-variation" in codes(np.array([0.5, 1.5]))  # mean exactly 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero mean, no std of one sample
        assert "high-variation" not in codes(np.array([-1.0, 1.0]))
        assert "high-variation" not in codes(np.array([5.0]))
        assert stats.change_points([5.0] * 30) == []
    x = lognormal(400, seed=2, sigma=0.2)
    cv = float(np.std(x, ddof=1)) / abs(float(np.mean(x)))
    assert "high-variation" not in codes(x, cv_threshold=cv)  # equal is not above
    assert "high-variation" in codes(x, cv_threshold=cv * 0.999)


def test_drift_edge_cases() -> None:
    # a first-quarter median of exactly 1
    x = np.array([1.0] * 30 + [1.2] * 10)
    (w,) = [w for w in quality_warnings(x, percentiles=(50.0,)) if w.code == "drift"]
    assert "is 20.0% slower than the first (median 1.2 ms vs 1 ms" in w.message
    # exactly at the thresholds: not beyond them
    rng = np.random.default_rng(3)
    y = np.concatenate([10 + rng.normal(0, 0.1, 75), 11 + rng.normal(0, 0.1, 25)])
    first, last = y[:25], y[-25:]
    rel = (float(np.median(last)) - float(np.median(first))) / abs(float(np.median(first)))
    assert "drift" in codes(y)
    assert "drift" not in codes(y, drift_threshold=rel)
    p = mann_whitney_u(first, last).p_value
    assert "drift" not in codes(y, drift_alpha=p)


def test_outlier_fences_use_the_quartiles() -> None:
    # 1..98: Q1 = 25.25, Q3 = 73.75 (linear), IQR = 48.5, upper far fence 219.25; P12.5 would
    # give a wider IQR and a fence above 240
    x = np.concatenate([np.arange(1.0, 99.0), [240.0, 240.0]])
    q1, q3 = np.percentile(x, [25.0, 75.0])
    assert q3 + 3 * (q3 - q1) < 240.0
    assert "outliers" in codes(x)
    assert "outliers" not in codes(np.array([10.0] * 98 + [50.0, 50.0]))  # IQR 0: no fences
    tiny = np.array([0.10] * 49 + [0.12] * 49 + [0.5, 0.5])  # an IQR below 1 still counts
    assert "outliers" in codes(tiny)


def test_noise_sigma_of_short_series() -> None:
    # three points: differences 1 and 2, MAD 0.5
    assert stats.robust_noise_sigma([0.0, 1.0, 3.0]) == pytest.approx(
        1.4826 * 0.5 / math.sqrt(2.0), rel=1e-12
    )
    assert stats.robust_noise_sigma([1.0]) == 0.0


def test_change_points_shortest_series_and_bad_values() -> None:
    # 2 * min_size points: one split is tried, and found
    assert stats.change_points([0.0, 0.1, 0.0, 10.0, 10.1, 10.0]) == [3]
    assert stats.change_points([0.0, 0.1, 0.0, 10.0, 10.1]) == []
    with pytest.raises(OrinbenchError, match="NaN or infinite"):
        stats.change_points([1.0, math.nan, 2.0, 3.0, 4.0, 5.0])


def test_a_split_must_score_above_the_threshold() -> None:
    # one split of [0, 0, 0, 10, 10, 10]: T = sqrt(3 * 3 / 6) * |0 - 10| / sigma
    x = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0]
    t = math.sqrt(3 * 3 / 6) * 10.0 / stats.robust_noise_sigma(x)
    assert stats.change_points(x, threshold=t) == []  # equal is not above
    assert stats.change_points(x, threshold=t * 0.999) == [3]


# -- the sequential gate's intervals: bootstrap_ratio_normal_ci, mean_ratio_ci, normal_quantile


def _lognormal_samples(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(mean=2.0, sigma=0.1, size=n)


def test_bootstrap_ratio_normal_ci_is_the_documented_formula() -> None:
    # r * exp(-/+ z * s): r the ratio of the samples' linear percentiles, s half the distance
    # between the 15.87 % and 84.13 % quantiles of the resampled log ratios (b over a), z the
    # normal 1 - alpha/2 quantile; the draws are the module's own bootstrap (same seed and order)
    a, b = _lognormal_samples(1, 400), _lognormal_samples(2, 300, scale=1.1)
    for q, conf, n_res, seed in [(50.0, 0.95, 2000, 0), (99.0, 0.9999, 500, 7)]:
        rng = np.random.default_rng(seed)
        xa, xb = np.sort(a), np.sort(b)
        sa = stats._bootstrap_percentiles(xa, q, n_res, rng)
        sb = stats._bootstrap_percentiles(xb, q, n_res, rng)
        logs = np.log(sb) - np.log(sa)
        lo16, hi84 = np.quantile(logs, [scipy.stats.norm.cdf(-1), scipy.stats.norm.cdf(1)])
        s = (hi84 - lo16) / 2
        z = scipy.stats.norm.ppf(1 - (1 - conf) / 2)
        r = np.percentile(xb, q) / np.percentile(xa, q)
        lo, hi = stats.bootstrap_ratio_normal_ci(
            a, b, q=q, confidence=conf, n_resamples=n_res, seed=seed
        )
        assert lo == pytest.approx(r * math.exp(-z * s), rel=1e-12)
        assert hi == pytest.approx(r * math.exp(z * s), rel=1e-12)
        assert lo < 1.1 * 1.2 and hi > 1.1 / 1.2  # a sane interval around the true ratio


def test_bootstrap_ratio_normal_ci_defaults() -> None:
    a, b = _lognormal_samples(3, 300), _lognormal_samples(4, 300)
    assert stats.bootstrap_ratio_normal_ci(a, b) == stats.bootstrap_ratio_normal_ci(
        a, b, q=50.0, n_resamples=2000, confidence=0.95, seed=0
    )
    for other in ({"q": 25.0}, {"n_resamples": 2001}, {"seed": 1}, {"confidence": 0.9}):
        assert stats.bootstrap_ratio_normal_ci(a, b, **other) != stats.bootstrap_ratio_normal_ci(
            a, b
        )


def test_bootstrap_ratio_normal_ci_refuses_what_it_cannot_do() -> None:
    a, b = _lognormal_samples(5, 100), _lognormal_samples(6, 100)
    for bad in ({"q": -0.01}, {"q": 100.01}, {"n_resamples": 9}, {"confidence": 1.0}):
        with pytest.raises(UsageError):
            stats.bootstrap_ratio_normal_ci(a, b, **bad)
    # the edges are allowed
    for ok in ({"q": 0.0}, {"q": 100.0}, {"q": 0.5}, {"n_resamples": 10}):
        lo, hi = stats.bootstrap_ratio_normal_ci(a, b, **ok)
        assert 0 < lo <= hi
    # a percentile of zero has no log ratio: in the samples, or only in some resamples
    zeros_then_ones = np.array([0.0] * 40 + [1.0] * 60)
    assert np.percentile(zeros_then_ones, 50) == 1.0
    for x, y in [(zeros_then_ones, b), (b, zeros_then_ones), (np.zeros(50), b), (b, np.zeros(50))]:
        with pytest.raises(UsageError, match="log ratio is undefined"):
            stats.bootstrap_ratio_normal_ci(x, y)
    # values below 1 are fine
    lo, hi = stats.bootstrap_ratio_normal_ci(a / 100.0, b / 100.0)
    assert (lo, hi) == pytest.approx(stats.bootstrap_ratio_normal_ci(a, b), rel=1e-12)


def test_mean_ratio_ci_is_the_delta_method() -> None:
    a, b = _lognormal_samples(7, 250), _lognormal_samples(8, 180, scale=0.9)
    for conf in (0.95, 0.999):
        se = math.sqrt(
            np.var(a, ddof=1) / (a.size * a.mean() ** 2)
            + np.var(b, ddof=1) / (b.size * b.mean() ** 2)
        )
        z = scipy.stats.norm.ppf(1 - (1 - conf) / 2)
        r = b.mean() / a.mean()
        lo, hi = stats.mean_ratio_ci(a, b, confidence=conf)
        assert lo == pytest.approx(r * math.exp(-z * se), rel=1e-12)
        assert hi == pytest.approx(r * math.exp(z * se), rel=1e-12)
    assert stats.mean_ratio_ci(a, b) == stats.mean_ratio_ci(a, b, confidence=0.95)


def test_mean_ratio_ci_refuses_what_it_cannot_do() -> None:
    two = np.array([1.0, 2.0])
    assert stats.mean_ratio_ci(two, two)[0] < 1.0 < stats.mean_ratio_ci(two, two)[1]
    for x, y in [(np.array([1.0]), two), (two, np.array([1.0]))]:
        with pytest.raises(UsageError, match="at least 2 samples"):
            stats.mean_ratio_ci(x, y)
    for x, y in [(np.array([-1.0, 1.0]), two), (two, np.array([-1.0, 1.0])),
                 (np.array([-2.0, 1.0]), two), (two, np.array([-2.0, 1.0]))]:  # fmt: skip
        with pytest.raises(UsageError, match="undefined"):
            stats.mean_ratio_ci(x, y)
    half = np.array([0.25, 0.75])  # a mean below 1 is fine
    assert stats.mean_ratio_ci(half, half)[0] < 1.0
    with pytest.raises(UsageError):
        stats.mean_ratio_ci(two, two, confidence=0.0)


def test_normal_quantile_is_exact_inside_and_refuses_the_ends() -> None:
    for p in (1e-12, 0.025, 0.5, 0.8413447460685429, 1 - 1e-12):
        assert stats.normal_quantile(p) == pytest.approx(scipy.stats.norm.ppf(p), abs=1e-9)
    for p in (0.0, 1.0, -0.1, 1.1):
        with pytest.raises(UsageError, match="out of range"):
            stats.normal_quantile(p)
