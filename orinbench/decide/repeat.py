"""Reproducibility of builds: the same inputs built N times, each engine benchmarked.

TensorRT picks kernels (tactics) by timing them while it builds, so two builds of one ONNX model
with the same settings can differ in speed. :func:`repeat_builds` builds N times sharing one
timing cache (later builds reuse the tactics the first one timed) and N times without one, runs
the same benchmark on every engine, and reports:

* the **spread** of the median and of P99 across builds, per mode and over all builds:
  ``100 * (max - min) / min`` in percent;
* per build, whether it **differs from its siblings by more than the run-to-run noise** (a
  flag). With ``m_b`` the median of build b's samples and ``m_s`` the median of the pooled
  samples of all other builds, ``hw_b`` and ``hw_s`` the half-widths of the distribution-free
  95 % confidence intervals of those medians (:func:`orinbench.bench.stats.percentile_ci`),
  the run-to-run noise is ``noise = max(hw_b + hw_s, NOISE_FLOOR * m_s)`` and the build is
  flagged when ``|m_b - m_s| > noise`` and a two-sided Mann–Whitney test of b's samples against
  the siblings' gives ``p < ALPHA``. The CI term is the sampling noise of the two medians (the
  intervals do not overlap); ``NOISE_FLOOR`` (1 %) is the floor below which repeated runs of one
  engine are not told apart in practice (clock and memory-controller jitter), so that very long
  runs with very narrow intervals do not flag differences nobody can reproduce. With two builds,
  both are flagged when they differ (there is no majority to tell which is odd). A build with
  too few samples for a CI of the median (fewer than 6) is never flagged.
* the **fastest** build (lowest median). It is kept: moved to ``keep`` with the files beside it
  (its sidecar, log, produced calibration cache), and its sidecar gains a ``repeat`` section
  saying it is the fastest of N and what the spread was. The other engines are deleted.

:func:`repeat_runs` applies the same statistics to N benchmark runs of one artifact (ONNX
Runtime has nothing to build; its spread is pure run-to-run variation).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.stats import DEFAULT_CONFIDENCE, mann_whitney_u, percentile_ci
from ..errors import UsageError
from ..results.schema import HOST_LATENCY, Result

#: relative noise floor of repeated runs of one engine (1 %)
NOISE_FLOOR = 0.01
#: significance level of the Mann–Whitney test that must also hold for a flag
ALPHA = 0.01
#: timing-cache modes of :func:`repeat_builds`
MODE_SHARED = "shared-cache"
MODE_NONE = "no-cache"
MODE_RUN = "run"
#: files kept beside an engine (suffixes appended to its name)
SIBLING_SUFFIXES = (".json", ".log", ".calib")


def check_repeat(n: int) -> int:
    """``--repeat`` must be a positive count (a UsageError, exit 2, otherwise)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"--repeat must be >= 1, not {n}", fix="pass e.g. --repeat 3")
    return n


@dataclass(frozen=True)
class RepeatSample:
    """One build (or run) and its benchmark samples (host latency, ms)."""

    index: int
    mode: str
    artifact: str
    samples: tuple[float, ...]
    build_s: float | None = None


@dataclass(frozen=True)
class BuildFinding:
    """The statistics of one build against its siblings."""

    index: int
    mode: str
    artifact: str
    count: int
    median_ms: float
    p99_ms: float
    median_ci: tuple[float, float] | None
    sibling_median_ms: float | None
    delta_pct: float | None
    noise_pct: float | None
    p_value: float | None
    flagged: bool
    build_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "mode": self.mode,
            "artifact": self.artifact,
            "count": self.count,
            "median_ms": self.median_ms,
            "p99_ms": self.p99_ms,
            "median_ci": list(self.median_ci) if self.median_ci else None,
            "sibling_median_ms": self.sibling_median_ms,
            "delta_pct": self.delta_pct,
            "noise_pct": self.noise_pct,
            "p_value": self.p_value,
            "flagged": self.flagged,
            "build_s": self.build_s,
        }


@dataclass(frozen=True)
class Spread:
    """Spread of the median and P99 over a group of builds: ``100 * (max - min) / min``."""

    count: int
    median_min_ms: float
    median_max_ms: float
    p99_min_ms: float
    p99_max_ms: float

    @property
    def median_pct(self) -> float:
        return _spread(self.median_min_ms, self.median_max_ms)

    @property
    def p99_pct(self) -> float:
        return _spread(self.p99_min_ms, self.p99_max_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median_spread_pct": self.median_pct,
            "p99_spread_pct": self.p99_pct,
            "median_min_ms": self.median_min_ms,
            "median_max_ms": self.median_max_ms,
            "p99_min_ms": self.p99_min_ms,
            "p99_max_ms": self.p99_max_ms,
        }


def _spread(lo: float, hi: float) -> float:
    return 100.0 * (hi - lo) / lo if lo > 0 else math.inf


@dataclass(frozen=True)
class RepeatReport:
    """Spread, flags and the fastest build of one repeat (see the module docstring)."""

    builds: tuple[BuildFinding, ...]
    spread: Mapping[str, Spread]
    fastest: int
    kept: str | None = None

    @property
    def flagged(self) -> tuple[BuildFinding, ...]:
        return tuple(b for b in self.builds if b.flagged)

    @property
    def fastest_build(self) -> BuildFinding:
        return self.builds[self.fastest]

    def to_dict(self) -> dict[str, Any]:
        return {
            "builds": [b.to_dict() for b in self.builds],
            "spread": {k: v.to_dict() for k, v in self.spread.items()},
            "fastest": self.fastest_build.to_dict(),
            "kept": self.kept,
            "flagged": [b.index for b in self.flagged],
            "noise_floor_pct": 100.0 * NOISE_FLOOR,
            "alpha": ALPHA,
            "sentences": self.sentences(),
        }

    def sentences(self) -> list[str]:
        """The findings in plain sentences (what the CLI prints)."""
        out = []
        for mode, sp in self.spread.items():
            what = "all builds" if mode == "all" else f"{sp.count} builds ({mode})"
            if mode == MODE_RUN:
                what = f"{sp.count} runs"
            out.append(
                f"across {what} the median spreads by {sp.median_pct:.1f} % "
                f"({sp.median_min_ms:.3f}-{sp.median_max_ms:.3f} ms) and P99 by "
                f"{sp.p99_pct:.1f} % ({sp.p99_min_ms:.3f}-{sp.p99_max_ms:.3f} ms)"
            )
        for b in self.flagged:
            assert b.delta_pct is not None and b.noise_pct is not None
            word = "slower" if b.delta_pct > 0 else "faster"
            out.append(
                f"build {b.index} ({b.mode}) is {abs(b.delta_pct):.1f} % {word} than its "
                f"siblings, more than the run-to-run noise of {b.noise_pct:.1f} % "
                f"(Mann–Whitney p={b.p_value:.2g})"
            )
        f = self.fastest_build
        out.append(
            f"fastest: build {f.index} ({f.mode}), median {f.median_ms:.3f} ms"
            + (f", kept as {self.kept}" if self.kept else "")
        )
        return out


def _median_ci(x: np.ndarray) -> tuple[float, float] | None:
    return percentile_ci(x, 50.0, confidence=DEFAULT_CONFIDENCE)


def _hw(ci: tuple[float, float] | None) -> float | None:
    return None if ci is None else (ci[1] - ci[0]) / 2.0


def analyze_repeats(runs: Sequence[RepeatSample]) -> RepeatReport:
    """Spread, per-build flags and the fastest build of ``runs`` (see the module docstring)."""
    if not runs:
        raise UsageError("no builds to compare", fix="pass --repeat 1 or more")
    arrays = [np.asarray(r.samples, dtype=np.float64) for r in runs]
    for r, a in zip(runs, arrays, strict=True):
        if a.size == 0:
            raise UsageError(
                f"build {r.index} ({r.mode}) has no latency samples",
                fix="benchmark every build with at least one iteration",
            )
    findings: list[BuildFinding] = []
    for i, (r, x) in enumerate(zip(runs, arrays, strict=True)):
        m = float(np.median(x))
        ci = _median_ci(x)
        sib_parts = [a for j, a in enumerate(arrays) if j != i]
        sib_median = delta = noise = p = None
        flagged = False
        if sib_parts:
            sib = np.concatenate(sib_parts)
            ms = float(np.median(sib))
            sib_median = ms
            delta = 100.0 * (m - ms) / ms if ms else None
            hw_b, hw_s = _hw(ci), _hw(_median_ci(sib))
            if hw_b is not None and hw_s is not None and ms > 0:
                noise_abs = max(hw_b + hw_s, NOISE_FLOOR * ms)
                noise = 100.0 * noise_abs / ms
                p = mann_whitney_u(x, sib).p_value
                flagged = abs(m - ms) > noise_abs and p < ALPHA
        findings.append(
            BuildFinding(
                index=r.index,
                mode=r.mode,
                artifact=r.artifact,
                count=int(x.size),
                median_ms=m,
                p99_ms=float(np.percentile(x, 99)),
                median_ci=ci,
                sibling_median_ms=sib_median,
                delta_pct=delta,
                noise_pct=noise,
                p_value=p,
                flagged=flagged,
                build_s=r.build_s,
            )
        )
    groups: dict[str, list[BuildFinding]] = {}
    for f in findings:
        groups.setdefault(f.mode, []).append(f)
    if len(groups) > 1:
        groups["all"] = list(findings)
    spread = {
        mode: Spread(
            count=len(fs),
            median_min_ms=min(f.median_ms for f in fs),
            median_max_ms=max(f.median_ms for f in fs),
            p99_min_ms=min(f.p99_ms for f in fs),
            p99_max_ms=max(f.p99_ms for f in fs),
        )
        for mode, fs in groups.items()
    }
    fastest = min(range(len(findings)), key=lambda k: (findings[k].median_ms, k))
    return RepeatReport(builds=tuple(findings), spread=spread, fastest=fastest)


@dataclass(frozen=True)
class BuildRequest:
    """What :func:`repeat_builds` asks the build callable for."""

    index: int
    mode: str
    engine_path: Path
    timing_cache: Path | None


BuildFn = Callable[[BuildRequest], Path]
BenchFn = Callable[[Path], Result]


def _latency(result: Result, what: str) -> tuple[float, ...]:
    samples = result.samples.get(HOST_LATENCY)
    if not samples:
        raise UsageError(
            f"the benchmark of {what} has no latency samples",
            fix="benchmark with at least one iteration",
        )
    return tuple(samples)


def _move_with_siblings(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", *SIBLING_SUFFIXES):
        a = src.with_name(src.name + suffix)
        if a.exists():
            os.replace(a, dst.with_name(dst.name + suffix))


def _remove_with_siblings(path: Path) -> None:
    for suffix in ("", *SIBLING_SUFFIXES):
        p = path.with_name(path.name + suffix)
        if p.exists():
            p.unlink()


def mark_kept(engine_path: str | os.PathLike[str], report: RepeatReport, *, n: int) -> bool:
    """Record in the engine's sidecar that it is the fastest of ``n`` builds; False if none.

    The sidecar API has no update call, so the sidecar is read, extended and written again
    (atomically) with :func:`~orinbench.backends.tensorrt.sidecar.write_sidecar`. Its ``engine``
    and ``build.log`` names follow the moved file.
    """
    from ..backends.tensorrt.sidecar import read_sidecar, write_sidecar

    path = Path(engine_path)
    data = read_sidecar(path)
    if data is None:
        return False
    data = dict(data)
    engine = dict(data.get("engine") or {})
    engine["file"] = path.name
    data["engine"] = engine
    build = dict(data.get("build") or {})
    if build.get("log"):
        build["log"] = path.name + ".log"
    data["build"] = build
    fastest = report.fastest_build
    data["repeat"] = {
        "kept": f"fastest of {n} builds",
        "builds": len(report.builds),
        "index": fastest.index,
        "mode": fastest.mode,
        "median_ms": fastest.median_ms,
        "p99_ms": fastest.p99_ms,
        "spread": {k: v.to_dict() for k, v in report.spread.items()},
        "flagged": [b.index for b in report.flagged],
    }
    write_sidecar(path, data)
    return True


def repeat_builds(
    *,
    n: int,
    build: BuildFn,
    bench: BenchFn,
    keep: str | os.PathLike[str],
    timing_cache: str | os.PathLike[str] | None = None,
    modes: Sequence[str] = (MODE_SHARED, MODE_NONE),
    workdir: str | os.PathLike[str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[RepeatReport, Result]:
    """Build N times per timing-cache mode, benchmark every engine, keep the fastest.

    ``build(request)`` builds into ``request.engine_path`` with ``request.timing_cache`` (None:
    no timing cache) and returns the engine path; ``bench(engine)`` benchmarks it. Mode
    ``shared-cache`` passes ``timing_cache`` (default: a fresh file in the work folder, shared by
    the N builds); ``no-cache`` passes None. All builds are done first, then the engines are
    benchmarked round-robin over the modes (shared 0, none 0, shared 1, ...) so that a slow
    thermal drift does not line up with one mode. The fastest engine is moved to ``keep`` with
    its sidecar, log and calibration cache; its sidecar says so (:func:`mark_kept`). Returns the
    report and the fastest engine's benchmark result.
    """
    check_repeat(n)
    if not modes:
        raise UsageError("no timing-cache mode to repeat", fix="use shared-cache and/or no-cache")
    keep_path = Path(keep)
    keep_path.parent.mkdir(parents=True, exist_ok=True)
    # the work folder sits beside the kept engine, so that keeping it is a rename
    with tempfile.TemporaryDirectory(
        prefix=".orinbench-repeat-", dir=str(workdir) if workdir else str(keep_path.parent)
    ) as tmp:
        work = Path(tmp)
        shared = Path(timing_cache) if timing_cache is not None else work / "shared.timing.cache"
        built: dict[tuple[str, int], tuple[Path, float, int]] = {}
        for mode in modes:
            for i in range(n):
                req = BuildRequest(
                    index=len(built),
                    mode=mode,
                    engine_path=work / f"build-{len(built)}-{mode}.engine",
                    timing_cache=shared if mode == MODE_SHARED else None,
                )
                if on_step is not None:
                    on_step(f"build {i + 1}/{n} ({mode})")
                t0 = time.perf_counter()
                path = Path(build(req))
                built[(mode, i)] = (path, time.perf_counter() - t0, req.index)
        runs: list[RepeatSample] = []
        results: list[Result] = []
        for i in range(n):
            for mode in modes:
                path, seconds, index = built[(mode, i)]
                if on_step is not None:
                    on_step(f"benchmark build {i + 1}/{n} ({mode})")
                result = bench(path)
                results.append(result)
                runs.append(
                    RepeatSample(
                        index=index,
                        mode=mode,
                        artifact=str(path),
                        samples=_latency(result, str(path)),
                        build_s=seconds,
                    )
                )
        report = analyze_repeats(runs)
        best = runs[report.fastest]
        _move_with_siblings(Path(best.artifact), keep_path)
        for r in runs:
            if r is not best:
                _remove_with_siblings(Path(r.artifact))
        report = RepeatReport(report.builds, report.spread, report.fastest, kept=str(keep_path))
        mark_kept(keep_path, report, n=len(runs))
        if timing_cache is None and shared.exists():
            shared.unlink()
    return report, results[report.fastest]


def repeat_runs(
    bench: Callable[[], Result],
    *,
    n: int,
    artifact: str = "",
) -> tuple[RepeatReport, list[Result]]:
    """Benchmark one artifact ``n`` times (no builds): the spread is run-to-run variation."""
    check_repeat(n)
    results = [bench() for _ in range(n)]
    runs = [
        RepeatSample(index=i, mode=MODE_RUN, artifact=artifact, samples=_latency(r, artifact))
        for i, r in enumerate(results)
    ]
    return analyze_repeats(runs), results
