"""The report's plots, drawn with matplotlib (the optional ``report`` extra) into PNG bytes.

Figures are made with matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``:
no global state, no GUI backend, safe to call from any thread. Each function returns a
:class:`Plot` whose PNG is embedded in the HTML as a ``data:`` URI, so the page needs no network.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _lazy

#: percentiles marked on the latency plots, with their line styles
MARKED_PERCENTILES: tuple[tuple[float, str], ...] = ((50.0, "-"), (95.0, "--"), (99.0, ":"))
#: histograms show samples up to this percentile (times 1.02); the rest is counted in the legend
HIST_UPPER_PERCENTILE = 99.9
#: resolution of the embedded PNGs
DPI = 100
#: colour of the baseline in every plot (results take matplotlib's default cycle)
BASELINE_COLOR = "#6b6b6b"


@dataclass(frozen=True)
class Plot:
    """One rendered figure. ``key`` is a stable id used in the HTML (``data-plot``)."""

    key: str
    title: str
    png: bytes
    alt: str

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Series:
    """A labelled sample series in ms; ``baseline`` series are drawn grey and dashed."""

    label: str
    samples: npt.NDArray[np.float64]
    baseline: bool = False


def _figure_class() -> Any:
    _lazy.matplotlib()  # the hint for a missing matplotlib names the 'report' extra
    return _lazy.require("matplotlib.figure").Figure


def _new_figure(width: float, height: float, *, ncols: int = 1, nrows: int = 1) -> tuple[Any, Any]:
    fig = _figure_class()(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows=nrows, ncols=ncols, squeeze=False)
    for ax in axes.ravel():
        ax.grid(True, alpha=0.3, linewidth=0.6)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # metadata=None entries drop the software/date chunks: the same data gives the same bytes
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _colors(series: Sequence[Series]) -> list[str]:
    out = []
    i = 0
    for s in series:
        if s.baseline:
            out.append(BASELINE_COLOR)
        else:
            out.append(f"C{i % 10}")
            i += 1
    return out


def _pct_label(p: float) -> str:
    return f"P{p:g}"


# ------------------------------------------------------------------------------------------ latency


def latency_histogram(series: Sequence[Series], *, key: str, title: str) -> Plot:
    """Histogram of each series on shared bins, P50/P95/P99 marked as vertical lines.

    With more than one series the bars are densities (results of different lengths compare); the
    x range ends a little past the largest P99.9, and the legend counts the samples beyond it.
    """
    fig, axes = _new_figure(7.6, 3.6)
    ax = axes[0, 0]
    colors = _colors(series)
    lo = min(float(s.samples.min()) for s in series)
    hi = max(float(np.percentile(s.samples, HIST_UPPER_PERCENTILE)) for s in series) * 1.02
    hi = max(hi, lo * 1.001 + 1e-9)
    n_max = max(s.samples.size for s in series)
    bins = np.linspace(lo, hi, int(np.clip(np.sqrt(n_max), 10, 80)) + 1)
    density = len(series) > 1
    for s, c in zip(series, colors, strict=True):
        beyond = int(np.count_nonzero(s.samples > hi))
        label = s.label + (f"  ({beyond} beyond {hi:.3g} ms)" if beyond else "")
        ax.hist(
            np.clip(s.samples, lo, hi),
            bins=bins,
            density=density,
            histtype="stepfilled" if not s.baseline else "step",
            alpha=0.45 if not s.baseline else 1.0,
            color=c,
            linestyle="--" if s.baseline else "-",
            linewidth=1.4,
            label=label,
        )
    ymax = ax.get_ylim()[1]
    for s, c in zip(series, colors, strict=True):
        for p, ls in MARKED_PERCENTILES:
            v = float(np.percentile(s.samples, p))
            ax.axvline(v, color=c, linestyle=ls, linewidth=1.2)
            ax.text(
                v,
                ymax * 0.97,
                f" {_pct_label(p)}",
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color=c,
            )
    ax.set_xlabel("latency [ms]")
    ax.set_ylabel("density" if density else "iterations")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    alt = "; ".join(
        f"{s.label}: "
        + ", ".join(
            f"{_pct_label(p)} {np.percentile(s.samples, p):.3f} ms" for p, _ in MARKED_PERCENTILES
        )
        for s in series
    )
    return Plot(key=key, title=title, png=_png(fig), alt=f"Latency histogram. {alt}")


def latency_cdf(series: Sequence[Series], *, key: str, title: str) -> Plot:
    """Empirical CDF of each series, whole range on the left and the tail (90–100 %) on the right,
    with P50/P95/P99 marked and their values written beside the marks."""
    fig, axes = _new_figure(7.6, 3.4, ncols=2)
    colors = _colors(series)
    for panel, ax in enumerate(axes[0]):
        for s, c in zip(series, colors, strict=True):
            x = np.sort(s.samples)
            y = np.arange(1, x.size + 1) / x.size
            ax.step(
                x,
                y,
                where="post",
                color=c,
                linestyle="--" if s.baseline else "-",
                linewidth=1.4,
                label=s.label if panel == 0 else None,
            )
            for p, _ in MARKED_PERCENTILES:
                if panel == 0 and p > 50.0:
                    continue  # the tail panel carries P95/P99; the full one only P50
                v = float(np.percentile(s.samples, p))
                ax.plot([v], [p / 100.0], marker="o", color=c, markersize=4)
                ax.annotate(
                    f"{_pct_label(p)} {v:.3g}",
                    (v, p / 100.0),
                    textcoords="offset points",
                    xytext=(4, -10 if s.baseline else 3),
                    fontsize=7,
                    color=c,
                )
        ax.set_xlabel("latency [ms]")
    left, right = axes[0]
    left.set_ylabel("fraction of iterations ≤ x")
    left.set_ylim(0.0, 1.02)
    left.set_title("CDF", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    tail_lo = min(float(np.percentile(s.samples, 88.0)) for s in series)
    tail_hi = max(float(s.samples.max()) for s in series)
    right.set_xlim(tail_lo, tail_hi * 1.01 + 1e-9)
    right.set_ylim(0.9, 1.002)
    right.set_title("tail (P90–P100)", fontsize=10)
    fig.suptitle(title, fontsize=10)
    return Plot(key=key, title=title, png=_png(fig), alt=f"Latency CDF of {len(series)} series")


# ------------------------------------------------------------------------------------------ stages


def stage_breakdown(
    stages: Mapping[str, Mapping[str, Any]],
    *,
    baseline: Mapping[str, Mapping[str, Any]] | None = None,
    key: str,
    title: str,
) -> Plot:
    """Horizontal bars: each stage's P50, a whisker to its P99, its share of the pipeline; with
    a baseline, its bars beside the result's so the stage that got slower stands out."""
    names = list(stages)
    if baseline:
        names += [n for n in baseline if n not in stages]
    fig, axes = _new_figure(7.6, 0.5 + 0.45 * len(names) * (2 if baseline else 1) + 0.8)
    ax = axes[0, 0]
    y = np.arange(len(names), dtype=float)
    height = 0.38 if baseline else 0.6
    sets: list[tuple[str, Mapping[str, Mapping[str, Any]], str, float]] = [
        ("result", stages, "C0", -height / 2 if baseline else 0.0)
    ]
    if baseline:
        sets.append(("baseline", baseline, BASELINE_COLOR, height / 2))
    for label, data, color, off in sets:
        p50 = np.array([_stage_value(data, n, "p50_ms") for n in names])
        p99 = np.array([_stage_value(data, n, "p99_ms") for n in names])
        ax.barh(
            y + off, np.nan_to_num(p50), height=height, color=color, alpha=0.8, label=f"{label} P50"
        )
        err = np.where(np.isnan(p99), 0.0, np.nan_to_num(p99) - np.nan_to_num(p50))
        ax.errorbar(
            np.nan_to_num(p50) + err / 2,
            y + off,
            xerr=err / 2,
            fmt="none",
            ecolor="black",
            elinewidth=1,
            capsize=3,
        )
        for yi, n in zip(y, names, strict=True):
            share = (data.get(n) or {}).get("share")
            v99 = _stage_value(data, n, "p99_ms")
            if not np.isnan(v99):
                txt = f" P99 {v99:.3g}" + (
                    f" · {share:.0%}" if isinstance(share, (int, float)) else ""
                )
                ax.text(v99, yi + off, txt, va="center", fontsize=7)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("stage latency [ms] (bar P50, whisker to P99)")
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.18)
    ax.legend(fontsize=8, loc="lower right")
    return Plot(
        key=key, title=title, png=_png(fig), alt=f"Per-stage latency of {len(names)} stages"
    )


def _stage_value(data: Mapping[str, Mapping[str, Any]], name: str, stat: str) -> float:
    lat = (data.get(name) or {}).get("latency") or {}
    v = lat.get(stat)
    return float(v) if isinstance(v, (int, float)) else float("nan")


# ------------------------------------------------------------------------------------------ power


def power_trace(
    t_s: Sequence[float], total_w: Sequence[float], *, mean_w: float | None, key: str, title: str
) -> Plot:
    """Total power over the measured window, with its mean as a dashed line."""
    t = np.asarray(t_s, dtype=float)
    w = np.asarray(total_w, dtype=float)
    fig, axes = _new_figure(7.6, 3.0)
    ax = axes[0, 0]
    ax.plot(t, w, color="C3", linewidth=1.0, label="total power")
    mean = float(np.mean(w)) if mean_w is None else float(mean_w)
    ax.axhline(mean, color="black", linestyle="--", linewidth=1.2, label=f"mean {mean:.2f} W")
    ax.set_xlabel("time in the measured window [s]")
    ax.set_ylabel("power [W]")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return Plot(key=key, title=title, png=_png(fig), alt=f"Power trace, mean {mean:.2f} W")


# ------------------------------------------------------------------------------------------ soak

#: soak window fields plotted, with axis labels
SOAK_FIELDS: tuple[tuple[str, str], ...] = (
    ("p99_ms", "P99 latency [ms]"),
    ("power_w", "power [W]"),
    ("gpu_clock_mhz", "GPU clock [MHz]"),
    ("temp_c", "temperature [°C]"),
)


def soak_windows(windows: Sequence[Mapping[str, Any]], *, key: str, title: str) -> Plot | None:
    """One panel per soak field present in the windows (P99, power, GPU clock, temperature)."""
    t = np.array([float(w.get("t_s", i)) for i, w in enumerate(windows)]) / 60.0
    present = [
        (f, label)
        for f, label in SOAK_FIELDS
        if any(isinstance(w.get(f), (int, float)) for w in windows)
    ]
    if not present or t.size == 0:
        return None
    ncols = 2 if len(present) > 1 else 1
    nrows = (len(present) + ncols - 1) // ncols
    fig, axes = _new_figure(7.6, 2.3 * nrows + 0.4, ncols=ncols, nrows=nrows)
    flat = list(axes.ravel())
    for i, (f, label) in enumerate(present):
        ax = flat[i]
        v = np.array(
            [float(w[f]) if isinstance(w.get(f), (int, float)) else np.nan for w in windows]
        )
        ax.plot(t, v, marker="o", markersize=3, color=f"C{i}")
        ax.set_ylabel(label, fontsize=8)
        ax.set_xlabel("time [min]", fontsize=8)
    for ax in flat[len(present) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return Plot(key=key, title=title, png=_png(fig), alt=f"Soak windows: {len(windows)}")


# ------------------------------------------------------------------------------------------ trend


@dataclass(frozen=True)
class TrendLine:
    """One series of a trend plot: the value of a metric per run, and where steps begin."""

    label: str
    times: Sequence[datetime | None]
    values: Sequence[float]
    run_ids: Sequence[int]
    steps: Sequence[int] = ()  # indices into values where a step change begins


def trend(lines: Sequence[TrendLine], *, metric: str, key: str, title: str) -> Plot:
    """A metric over runs, one line per device/model/precision; each segment's mean drawn as a
    flat line and every step change marked with its relative size. Runs without a parseable
    time are plotted by their order."""
    fig, axes = _new_figure(7.6, 3.6)
    ax = axes[0, 0]
    use_time = all(t is not None for ln in lines for t in ln.times)
    for i, ln in enumerate(lines):
        c = f"C{i % 10}"
        x: Any = list(ln.times) if use_time else list(range(len(ln.values)))
        v = np.asarray(ln.values, dtype=float)
        ax.plot(x, v, marker="o", markersize=3, linewidth=1.0, color=c, label=ln.label)
        bounds = [0, *ln.steps, v.size]
        for a, b in itertools.pairwise(bounds):
            if b > a:
                ax.plot([x[a], x[b - 1]], [v[a:b].mean()] * 2, color=c, linewidth=2.2, alpha=0.5)
        for s in ln.steps:
            before = float(v[bounds[bounds.index(s) - 1] : s].mean())
            after = float(v[s : bounds[bounds.index(s) + 1]].mean())
            delta = (after - before) / before * 100.0 if before else float("nan")
            ax.axvline(x[s], color="C3", linestyle="--", linewidth=1.0)
            ax.annotate(
                f"run {ln.run_ids[s]}: {delta:+.1f}%",
                (x[s], after),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=7,
                color="C3",
            )
    ax.set_ylabel(metric)
    ax.set_xlabel("run time (UTC)" if use_time else "run (oldest first)")
    if use_time:
        fig.autofmt_xdate()
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return Plot(key=key, title=title, png=_png(fig), alt=f"Trend of {metric} over runs")


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time (``...Z`` accepted) as a naive UTC datetime, or None."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt
