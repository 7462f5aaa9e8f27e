"""Statistics of latency samples: percentiles, distribution-free intervals, tests, quality checks.

Pure numpy (plus :mod:`math` from the standard library). docs/statistics.md gives every formula;
the numbers quoted in the docstrings below are the constants defined in this module.

Conventions
-----------
* Percentiles use numpy's default ``method="linear"`` (Hyndman & Fan type 7): for sorted samples
  ``x[0] <= ... <= x[n-1]`` the q-quantile is ``x[h0] + (h - h0) * (x[h0 + 1] - x[h0])`` with
  ``h = (n - 1) * q`` and ``h0 = floor(h)``.
* Confidence intervals of a percentile are distribution-free, from order statistics: the number of
  samples below the true q-quantile is Binomial(n, q), so ``[x_(l), x_(u)]`` (1-based order
  statistics) covers it with probability ``F(u - 1) - F(l - 1)`` where F is that binomial CDF.
  ``l`` and ``u`` are chosen equal-tailed: each tail holds at most ``(1 - confidence) / 2``.
  When such an ``l`` or ``u`` does not exist (too few samples for that percentile) the interval is
  ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from ..results.schema import QualityWarning

#: percentiles reported by :func:`summarize`, in percent, and their key stems in ``to_dict()``
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)
#: default confidence level of the percentile intervals
DEFAULT_CONFIDENCE = 0.95
#: coefficient of variation (std / mean) above which a run is flagged "high-variation"
CV_THRESHOLD = 0.10
#: relative change of the median between the first and the last quarter flagged as "drift"
DRIFT_THRESHOLD = 0.05
#: significance level of the Mann–Whitney test that must also hold for "drift"
DRIFT_ALPHA = 0.01
#: fraction of the run compared at each end for drift (first vs last quarter)
DRIFT_FRACTION = 0.25
#: each end must hold at least this many samples for the drift check to run
DRIFT_MIN_PART = 10
#: Tukey's far-out fence factor: outliers lie beyond Q3 + 3·IQR (or below Q1 − 3·IQR)
OUTLIER_FENCE = 3.0
#: fraction of far-out samples above which a run is flagged "outliers"
OUTLIER_FRACTION = 0.01
#: MAD -> standard deviation of a normal distribution
MAD_TO_SIGMA = 1.4826
#: default threshold of :func:`change_points` (a standardised CUSUM statistic, z-like)
CHANGE_POINT_THRESHOLD = 4.5

FloatArray = npt.NDArray[np.float64]


def _as_samples(samples: Sequence[float] | npt.ArrayLike, *, what: str = "samples") -> FloatArray:
    arr = np.asarray(samples, dtype=np.float64).ravel()
    if arr.size == 0:
        raise UsageError(f"no {what} to analyse", fix="run at least one measured iteration")
    if not np.all(np.isfinite(arr)):
        raise UsageError(
            f"{what} contain NaN or infinite values", fix="drop failed iterations before analysis"
        )
    return arr


def _pkey(p: float) -> str:
    """50 -> 'p50_ms', 99.9 -> 'p99_9_ms'."""
    return "p" + f"{p:g}".replace(".", "_") + "_ms"


# --------------------------------------------------------------------------------------------
# binomial order-statistic intervals


def _binom_cdf(n: int, q: float) -> FloatArray:
    """``F[k] = P(K <= k)`` for ``K ~ Binomial(n, q)``, k = 0..n.

    The pmf is built in log space, ``log C(n, k)`` as a cumulative sum of
    ``log(n - j + 1) - log(j)``, so it neither overflows nor loses the tails for large n.
    """
    k = np.arange(n + 1, dtype=np.float64)
    j = k[1:]
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - j + 1.0) - np.log(j))))
    if q <= 0.0:
        return np.ones(n + 1)
    if q >= 1.0:
        out = np.zeros(n + 1)
        out[-1] = 1.0
        return out
    log_pmf = log_comb + k * math.log(q) + (n - k) * math.log1p(-q)
    cdf = np.cumsum(np.exp(log_pmf))
    clipped: FloatArray = np.minimum(cdf, 1.0)
    return clipped


def order_statistic_ci(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` with ``P(x_(l) <= xi_q <= x_(u)) >= confidence``, or ``None``.

    Equal-tailed: ``l`` is the largest rank with ``P(K <= l - 1) <= alpha / 2`` and ``u`` the
    smallest with ``P(K >= u) <= alpha / 2``, ``K ~ Binomial(n, q)``, ``alpha = 1 - confidence``.
    ``None`` when ``l < 1`` or ``u > n`` would be needed.
    """
    _check_q(q)
    _check_confidence(confidence)
    if n < 1:
        return None
    half = (1.0 - confidence) / 2.0
    cdf = _binom_cdf(n, q)
    # lower: P(K <= l-1) = cdf[l-1] <= half; l-1 ranges over 0..n-1
    ok_lo = np.nonzero(cdf[:n] <= half)[0]
    # upper: P(K >= u) = 1 - cdf[u-1] <= half  <=>  cdf[u-1] >= 1 - half; u ranges over 1..n
    ok_hi = np.nonzero(cdf[:n] >= 1.0 - half)[0]
    if ok_lo.size == 0 or ok_hi.size == 0:
        return None
    return int(ok_lo[-1]) + 1, int(ok_hi[0]) + 1


def percentile_ci(
    samples: Sequence[float] | npt.ArrayLike, q: float, *, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float] | None:
    """Distribution-free ``confidence`` interval of the ``q``-th percentile (q in percent)."""
    arr = np.sort(_as_samples(samples))
    ranks = order_statistic_ci(arr.size, q / 100.0, confidence)
    if ranks is None:
        return None
    lo, hi = ranks
    return float(arr[lo - 1]), float(arr[hi - 1])


def min_samples_for_percentile(q: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Smallest n for which :func:`percentile_ci` of the q-quantile exists (``q`` in (0, 1)).

    The equal-tailed interval needs ``q**n <= alpha / 2`` (an upper order statistic exists) and
    ``(1 - q)**n <= alpha / 2`` (a lower one exists), ``alpha = 1 - confidence``, so
    ``n = ceil(log(alpha / 2) / log(max(q, 1 - q)))``. With 95 % confidence: P50 needs 6 samples,
    P90 36, P95 72, P99 368 and P99.9 3688.
    """
    _check_q(q)
    _check_confidence(confidence)
    half = (1.0 - confidence) / 2.0
    worst = max(q, 1.0 - q)
    n = max(1, math.ceil(math.log(half) / math.log(worst)))
    # the logarithms may round across the integer boundary: settle it exactly
    while n > 1 and worst ** (n - 1) <= half:
        n -= 1
    while worst**n > half:
        n += 1
    return n


#: samples a percentile's rarer side must hold on average before its interval's width is trusted
TAIL_SAMPLES = 10


def min_tail_samples(q: float, tail: int = TAIL_SAMPLES) -> int:
    """Smallest n with ``n * min(q, 1 - q) >= tail`` (``q`` in (0, 1), ``tail >= 1``): P50 20,
    P95 200, P99 1000, P99.9 10000 for the default 10.

    The distribution-free interval of a tail percentile exists from a few hundred samples (368
    for P99), but while only a handful of samples lie beyond the percentile its width swings
    from one check to the next, so a rule that stops "once the interval is narrow" stops on a
    lucky dip: at 10 % CV, 400 samples gave a P99 half-width under 2 % where the truth is nearer
    5 %. Stop rules and the baseline precision check wait for this many samples first.
    """
    _check_q(q)
    side = min(q, 1.0 - q)
    n = math.ceil(tail / side)
    # 10 / 0.01 is 1000.0000000000001: step back while one fewer still reaches the tail
    while (n - 1) * side >= tail - 1e-9:
        n -= 1
    return n


def _check_q(q: float) -> None:
    if not 0.0 < q < 1.0:
        raise UsageError(f"quantile {q!r} is out of range", fix="give a quantile between 0 and 1")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise UsageError(
            f"confidence {confidence!r} is out of range", fix="give a level such as 0.95"
        )


# --------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one sample series (milliseconds). ``ci`` maps ``p50_ms``... to an interval."""

    count: int
    min_ms: float
    max_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p99_9_ms: float
    ci: dict[str, tuple[float, float] | None]
    confidence: float = DEFAULT_CONFIDENCE

    def percentile(self, p: float) -> float:
        """The reported value of percentile ``p`` (one of :data:`PERCENTILES`)."""
        return float(getattr(self, _pkey(p)))

    def to_dict(self) -> dict[str, Any]:
        ci: dict[str, Any] = {k: (list(v) if v is not None else None) for k, v in self.ci.items()}
        ci["confidence"] = self.confidence
        return {
            "count": self.count,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "cv": self.cv,
            **{_pkey(p): self.percentile(p) for p in PERCENTILES},
            "ci": ci,
        }


def summarize(
    samples_ms: Sequence[float] | npt.ArrayLike, *, confidence: float = DEFAULT_CONFIDENCE
) -> LatencyStats:
    """Count, min, max, mean, sample std (ddof=1), CV, P50/P90/P95/P99/P99.9 and their CIs.

    ``std_ms`` is 0 for a single sample; ``cv = std_ms / mean_ms`` (0 when the mean is 0).
    Intervals are ``None`` where n is too small (see :func:`min_samples_for_percentile`).
    """
    _check_confidence(confidence)
    arr = np.sort(_as_samples(samples_ms, what="latency samples"))
    n = int(arr.size)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    cv = std / mean if mean != 0.0 else 0.0
    pct = np.percentile(arr, PERCENTILES, method="linear")
    ci: dict[str, tuple[float, float] | None] = {}
    for p in PERCENTILES:
        ranks = order_statistic_ci(n, p / 100.0, confidence)
        ci[_pkey(p)] = (
            None if ranks is None else (float(arr[ranks[0] - 1]), float(arr[ranks[1] - 1]))
        )
    return LatencyStats(
        count=n,
        min_ms=float(arr[0]),
        max_ms=float(arr[-1]),
        mean_ms=mean,
        std_ms=std,
        cv=abs(cv),
        p50_ms=float(pct[0]),
        p90_ms=float(pct[1]),
        p95_ms=float(pct[2]),
        p99_ms=float(pct[3]),
        p99_9_ms=float(pct[4]),
        ci=ci,
        confidence=confidence,
    )


def ci_relative_halfwidth(
    samples: Sequence[float] | npt.ArrayLike,
    q: float = 50,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> float | None:
    """Half the width of the percentile-``q`` CI divided by that percentile; ``None`` if no CI.

    The stop rule "CI narrow enough" stops a run once this is below its tolerance. Units cancel, so
    nanosecond or millisecond samples give the same value.
    """
    arr = _as_samples(samples)
    ci = percentile_ci(arr, q, confidence=confidence)
    if ci is None:
        return None
    center = float(np.percentile(arr, q, method="linear"))
    if center == 0.0:
        return None
    return (ci[1] - ci[0]) / 2.0 / abs(center)


def is_stable(
    window_ms: Sequence[float] | npt.ArrayLike, *, rel_tol: float = 0.02, k: int | None = None
) -> bool:
    """Whether the median of the last ``k`` samples is within ``rel_tol`` of the ``k`` before.

    ``|median(last k) - median(previous k)| <= rel_tol * median(previous k)``. ``k`` defaults to
    half the window; a window shorter than ``2 * k`` (or ``k < 1``) is not stable.
    """
    arr = np.asarray(window_ms, dtype=np.float64).ravel()
    k = arr.size // 2 if k is None else k
    if k < 1 or arr.size < 2 * k:
        return False
    last = float(np.median(arr[-k:]))
    prev = float(np.median(arr[-2 * k : -k]))
    return abs(last - prev) <= rel_tol * abs(prev)


# --------------------------------------------------------------------------------------------
# tests


@dataclass(frozen=True)
class MannWhitney:
    """Two-sided Mann–Whitney U test of ``a`` vs ``b``.

    ``u`` is the U statistic of ``a`` (pairs with a > b, ties counting one half; scipy's
    convention), ``z`` its continuity-corrected normal score (positive when ``a`` tends to be
    larger), and ``effect`` the common-language effect size ``P(B > A) + P(B = A) / 2``: above 0.5
    when ``b`` tends to be larger (slower, for latencies).
    """

    u: float
    z: float
    p_value: float
    effect: float


def _average_ranks(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """1-based ranks with ties averaged, and the sizes of the tie groups."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    avg = ends - (counts - 1) / 2.0
    return avg[inverse.ravel()], counts.astype(np.float64)


def mann_whitney_u(
    a: Sequence[float] | npt.ArrayLike, b: Sequence[float] | npt.ArrayLike
) -> MannWhitney:
    """Two-sided Mann–Whitney U with tie and continuity correction (normal approximation).

    ``U_a = R_a - n_a (n_a + 1) / 2`` (R_a: rank sum of a in the pooled sample, ties averaged),
    ``mu = n_a n_b / 2``, ``sigma^2 = n_a n_b / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))``,
    ``z = sign(U_a - mu) * max(0, |U_a - mu| - 1/2) / sigma``, ``p = min(1, erfc(|z| / sqrt 2))``.
    Matches ``scipy.stats.mannwhitneyu(a, b, method="asymptotic")``.
    """
    x = _as_samples(a)
    y = _as_samples(b)
    n1, n2 = float(x.size), float(y.size)
    big_n = n1 + n2
    ranks, ties = _average_ranks(np.concatenate((x, y)))
    u1 = float(ranks[: x.size].sum() - n1 * (n1 + 1.0) / 2.0)
    mu = n1 * n2 / 2.0
    tie_term = float((ties**3 - ties).sum()) / (big_n * (big_n - 1.0)) if big_n > 1 else 0.0
    var = n1 * n2 / 12.0 * ((big_n + 1.0) - tie_term)
    effect = 1.0 - u1 / (n1 * n2)
    if var <= 0.0:
        return MannWhitney(u=u1, z=0.0, p_value=1.0, effect=effect)
    sigma = math.sqrt(var)
    dev = u1 - mu
    z = math.copysign(max(0.0, abs(dev) - 0.5), dev) / sigma
    # erfc of the uncorrected-for-sign score: the same as 2 * sf(|U| - mu - 1/2) clipped at 1
    p = min(1.0, math.erfc((abs(dev) - 0.5) / sigma / math.sqrt(2.0)))
    return MannWhitney(u=u1, z=z, p_value=p, effect=effect)


def bootstrap_ratio_ci(
    a: Sequence[float] | npt.ArrayLike,
    b: Sequence[float] | npt.ArrayLike,
    *,
    q: float = 50.0,
    n_resamples: int = 2000,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of ``P_q(b) / P_q(a)`` (q in percent, linear percentiles).

    ``a`` and ``b`` are resampled independently with replacement ``n_resamples`` times; the
    interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles of the resampled ratios. Seeded, so
    repeatable. The percentile of each resample is drawn through the order statistics of uniform
    variates (see ``_bootstrap_percentiles``), so the cost does not grow with n.
    """
    _, _, stat_a, stat_b = _bootstrap_both(a, b, q, n_resamples, confidence, seed)
    if np.any(stat_a <= 0.0):
        raise UsageError(
            "the bootstrap ratio is undefined", why="the baseline percentile is zero or negative"
        )
    ratios = stat_b / stat_a
    half = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ratios, [half, 1.0 - half])
    return float(lo), float(hi)


def _bootstrap_both(
    a: Sequence[float] | npt.ArrayLike,
    b: Sequence[float] | npt.ArrayLike,
    q: float,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The checked arguments of the two ratio bootstraps, then both samples sorted and their
    resampled q-percentiles (``a``'s drawn first, from one generator seeded with ``seed``)."""
    _check_confidence(confidence)
    if not 0.0 <= q <= 100.0:
        raise UsageError(f"percentile {q!r} is out of range", fix="give q between 0 and 100")
    if n_resamples < 10:
        raise UsageError(f"n_resamples={n_resamples} is too small", fix="use 1000 or more")
    rng = np.random.default_rng(seed)
    xa = np.sort(_as_samples(a))
    xb = np.sort(_as_samples(b))
    return (
        xa,
        xb,
        _bootstrap_percentiles(xa, q, n_resamples, rng),
        _bootstrap_percentiles(xb, q, n_resamples, rng),
    )


def bootstrap_ratio_normal_ci(
    a: Sequence[float] | npt.ArrayLike,
    b: Sequence[float] | npt.ArrayLike,
    *,
    q: float = 50.0,
    n_resamples: int = 2000,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Normal-theory bootstrap CI of ``P_q(b) / P_q(a)``, fit for confidences near 1.

    The same resampled ratios as :func:`bootstrap_ratio_ci`, but the interval is
    ``r * exp(-/+ z * s)``: ``r`` the ratio of the samples' own linear percentiles, ``s`` a robust
    standard deviation of the resampled log ratios (half the distance between their 15.87 % and
    84.13 % quantiles, one standard deviation each side for a normal law) and ``z`` the standard
    normal ``1 - alpha/2`` quantile. A percentile interval at 99.99999 % confidence would need
    hundreds of millions of resamples; this one needs only the spread, which 2000 resamples give
    to a few percent. The sequential gate uses it at its strict early looks.
    """
    xa, xb, stat_a, stat_b = _bootstrap_both(a, b, q, n_resamples, confidence, seed)
    pa = float(np.percentile(xa, q, method="linear"))
    pb = float(np.percentile(xb, q, method="linear"))
    if np.any(stat_a <= 0.0) or np.any(stat_b <= 0.0) or pa <= 0.0 or pb <= 0.0:
        raise UsageError(
            "the bootstrap log ratio is undefined", why="a percentile is zero or negative"
        )
    logs = np.log(stat_b) - np.log(stat_a)
    lo16, hi84 = np.quantile(logs, [normal_cdf(-1.0), normal_cdf(1.0)])
    spread = float(hi84 - lo16) / 2.0
    z = normal_quantile(1.0 - (1.0 - confidence) / 2.0)
    center = math.log(pb / pa)
    return math.exp(center - z * spread), math.exp(center + z * spread)


def mean_ratio_ci(
    a: Sequence[float] | npt.ArrayLike,
    b: Sequence[float] | npt.ArrayLike,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float]:
    """Normal-approximation CI of ``mean(b) / mean(a)``, on the log scale (delta method).

    ``r = mean(b) / mean(a)``, ``se = sqrt(s_a^2 / (n_a mean(a)^2) + s_b^2 / (n_b mean(b)^2))``
    (sample variances, ddof=1), interval ``r * exp(-/+ z se)`` with ``z`` the standard normal
    ``1 - alpha/2`` quantile. The central limit theorem makes it fit for the means of a few hundred
    latency samples, which is where the gate uses it; both means must be positive.
    """
    _check_confidence(confidence)
    x = _as_samples(a)
    y = _as_samples(b)
    if x.size < 2 or y.size < 2:
        raise UsageError(
            "a mean-ratio interval needs at least 2 samples on each side", fix="run longer"
        )
    ma, mb = float(x.mean()), float(y.mean())
    if ma <= 0.0 or mb <= 0.0:
        raise UsageError("the mean ratio is undefined", why="a mean is zero or negative")
    se = math.sqrt(
        float(x.var(ddof=1)) / (x.size * ma * ma) + float(y.var(ddof=1)) / (y.size * mb * mb)
    )
    z = normal_quantile(1.0 - (1.0 - confidence) / 2.0)
    r = mb / ma
    return r * math.exp(-z * se), r * math.exp(z * se)


def normal_quantile(p: float) -> float:
    """The standard normal quantile ``Phi^-1(p)`` (``statistics.NormalDist``, exact to 1e-15)."""
    if not 0.0 < p < 1.0:
        raise UsageError(f"probability {p!r} is out of range", fix="give p in (0, 1)")
    return NormalDist().inv_cdf(p)


def normal_cdf(z: float) -> float:
    """The standard normal CDF ``Phi(z) = erfc(-z / sqrt 2) / 2``."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _bootstrap_percentiles(
    sorted_x: FloatArray, q: float, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """The linear q-percentile of ``n_resamples`` bootstrap resamples of ``sorted_x``, in O(1) each.

    A resample draws indices ``floor(n·U_i)`` with ``U_i`` uniform on (0, 1). The map is monotone,
    so its k-th smallest index is ``floor(n·U_(k))``, and the k-th order statistic of n uniforms
    is ``Beta(k, n + 1 - k)``; the next one is ``U_(k) + (1 - U_(k))·Beta(1, n - k)`` (the least
    of the n - k draws above it). The two order statistics the linear percentile needs are thus
    drawn exactly, without materialising the n indices.
    """
    n = sorted_x.size
    h = (n - 1) * q / 100.0
    h0 = math.floor(h)
    frac = h - h0
    k = h0 + 1  # 1-based rank of the lower order statistic
    u0 = rng.beta(k, n + 1 - k, size=n_resamples)
    lo = sorted_x[np.minimum((u0 * n).astype(np.int64), n - 1)]
    if frac == 0.0 or k >= n:
        out: FloatArray = lo
        return out
    u1 = u0 + (1.0 - u0) * rng.beta(1, n - k, size=n_resamples)
    hi = sorted_x[np.minimum((u1 * n).astype(np.int64), n - 1)]
    res: FloatArray = lo + frac * (hi - lo)
    return res


# --------------------------------------------------------------------------------------------
# quality warnings


def quality_warnings(
    samples_ms: Sequence[float] | npt.ArrayLike,
    *,
    percentiles: Sequence[float] = PERCENTILES,
    confidence: float = DEFAULT_CONFIDENCE,
    cv_threshold: float = CV_THRESHOLD,
    drift_threshold: float = DRIFT_THRESHOLD,
    drift_alpha: float = DRIFT_ALPHA,
) -> list[QualityWarning]:
    """Measurement-quality findings of one series, in run order.

    * ``few-samples``: n is below :func:`min_samples_for_percentile` for one of ``percentiles``.
    * ``high-variation``: CV (sample std / mean) above ``cv_threshold`` (default 0.10).
    * ``drift``: the medians of the first and last quarter differ by more than ``drift_threshold``
      (default 0.05, relative to the first) AND a Mann–Whitney test between the two quarters gives
      p < ``drift_alpha`` (default 0.01). Needs 10 samples in each quarter.
    * ``outliers``: more than 1 % of samples lie beyond Tukey's far fences (Q1 − 3·IQR, Q3 + 3·IQR).
    """
    arr = _as_samples(samples_ms, what="latency samples")
    n = int(arr.size)
    out: list[QualityWarning] = []

    lacking = []
    for p in percentiles:
        need = min_samples_for_percentile(p / 100.0, confidence)
        if n < need:
            lacking.append(f"P{p:g} (needs {need})")
    if lacking:
        out.append(
            QualityWarning(
                "few-samples",
                f"{n} samples are too few for a {confidence:.0%} confidence interval of "
                + ", ".join(lacking)
                + "; run longer (more iterations) before trusting those percentiles",
            )
        )

    mean = float(arr.mean())
    if n > 1 and mean != 0.0:
        cv = float(arr.std(ddof=1)) / abs(mean)
        if cv > cv_threshold:
            out.append(
                QualityWarning(
                    "high-variation",
                    f"coefficient of variation {cv:.1%} exceeds {cv_threshold:.0%}; "
                    "lock the clocks (jetson_clocks), stop background load, or warm up longer",
                )
            )

    part = int(n * DRIFT_FRACTION)
    if part >= DRIFT_MIN_PART:
        first, last = arr[:part], arr[-part:]
        m_first, m_last = float(np.median(first)), float(np.median(last))
        if m_first != 0.0:
            rel = (m_last - m_first) / abs(m_first)
            if abs(rel) > drift_threshold:
                mw = mann_whitney_u(first, last)
                if mw.p_value < drift_alpha:
                    word = "slower" if rel > 0 else "faster"
                    out.append(
                        QualityWarning(
                            "drift",
                            f"the last quarter of the run is {abs(rel):.1%} {word} than the first "
                            f"(median {m_last:.4g} ms vs {m_first:.4g} ms, Mann–Whitney "
                            f"p={mw.p_value:.2g}); check for thermal throttling or clock changes, "
                            "or warm up until stable",
                        )
                    )

    q1, q3 = np.percentile(arr, [25.0, 75.0], method="linear")
    iqr = float(q3 - q1)
    if iqr > 0.0:
        far = int(
            np.count_nonzero((arr > q3 + OUTLIER_FENCE * iqr) | (arr < q1 - OUTLIER_FENCE * iqr))
        )
        if far > OUTLIER_FRACTION * n:
            out.append(
                QualityWarning(
                    "outliers",
                    f"{far} of {n} samples ({far / n:.1%}) lie beyond {OUTLIER_FENCE:g}·IQR of "
                    f"the quartiles (max {float(arr.max()):.4g} ms); look for preemption or "
                    "memory pressure",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# change points


def robust_noise_sigma(values: Sequence[float] | npt.ArrayLike) -> float:
    """Noise standard deviation from first differences: ``1.4826 · MAD(diff) / sqrt(2)``.

    Differencing removes the level, so a few step changes barely move the estimate. Falls back to
    ``std(diff) / sqrt(2)`` when the MAD is 0 (quantised data), and is 0 for a constant series.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size < 3:
        return 0.0
    d = np.diff(arr)
    mad = float(np.median(np.abs(d - np.median(d))))
    sigma = MAD_TO_SIGMA * mad / math.sqrt(2.0)
    if sigma == 0.0:
        sigma = float(d.std()) / math.sqrt(2.0)
    return sigma


def change_points(
    values: Sequence[float] | npt.ArrayLike,
    *,
    min_size: int = 3,
    threshold: float = CHANGE_POINT_THRESHOLD,
) -> list[int]:
    """Indices where a step change of the mean begins (binary segmentation), sorted.

    For a segment ``v[s:e]`` and each split ``t`` leaving at least ``min_size`` points on each
    side, ``T(t) = sqrt(n1 n2 / n) · |mean(v[s:t]) - mean(v[t:e])| / sigma`` with ``sigma`` from
    :func:`robust_noise_sigma` of the whole series. If ``max T > threshold`` (default 4.5) the
    segment is split at the argmax and both halves are searched again. Under i.i.d. normal noise
    ``T(t)`` is N(0, 1) at each t, so the threshold is a z-score corrected for the many t tried.
    """
    if min_size < 1:
        raise UsageError(f"min_size={min_size} is too small", fix="use min_size >= 1")
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise UsageError("the series contains NaN or infinite values", fix="drop those points")
    sigma = robust_noise_sigma(arr)
    if sigma == 0.0 or arr.size < 2 * min_size:
        return []
    found: list[int] = []
    stack = [(0, int(arr.size))]
    while stack:
        s, e = stack.pop()
        n = e - s
        if n < 2 * min_size:
            continue
        seg = arr[s:e]
        csum = np.cumsum(seg)
        t = np.arange(min_size, n - min_size + 1)
        left = csum[t - 1] / t
        right = (csum[-1] - csum[t - 1]) / (n - t)
        stat = np.sqrt(t * (n - t) / n) * np.abs(left - right) / sigma
        best = int(np.argmax(stat))
        if stat[best] > threshold:
            cut = s + int(t[best])
            found.append(cut)
            stack.append((s, cut))
            stack.append((cut, e))
    return sorted(found)
