"""The measurement protocol: the harness owns the clock; runners only do the work.

One iteration is timed as trtexec times it (see ``backends/base.py`` for the phases)::

    t0 = clock()                       # host end-to-end latency starts
    runner.stage_inputs()              # H2D           (skipped with transfers=False)
    timer.record_start()               # device clock  (CUDA event), where the backend has one
    e0 = clock(); runner.enqueue(); e1 = clock()        # enqueue time = e1 - e0
    timer.record_stop()
    runner.fetch_outputs()             # D2H           (skipped with transfers=False)
    runner.synchronize()
    t1 = clock()                       # host latency = t1 - t0; device time = timer.elapsed_ms()

Each iteration is stored: percentiles come from per-iteration samples, never from block means.

Warm-up runs by time or count, optionally until stable (the median of the last window within
``stable_rel_tol`` of the window before, bounded by ``max_seconds``). The measured run stops by
count, by duration, or when the distribution-free confidence interval of the median is narrower than
``ci_rel_halfwidth`` of the median (bounded by ``max_seconds``). The rule and the reason the run
stopped are recorded in the result.

A power source is started right before the measured window and stopped right after it; the loop
never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from .stats import ci_relative_halfwidth, is_stable

Clock = Callable[[], int]
#: called with (iterations done, fraction of the run done or -1 when unknown) a few times a second
ProgressCallback = Callable[[int, float], None]

#: how often the CI stop rule is evaluated (iterations) — it sorts the samples, so not every time
_CI_CHECK_EVERY = 50
#: progress callbacks at most this often (ns)
_PROGRESS_EVERY_NS = 250_000_000


class _Timed(Protocol):
    def stage_inputs(self) -> None: ...
    def enqueue(self) -> None: ...
    def fetch_outputs(self) -> None: ...
    def synchronize(self) -> None: ...
    def device_timer(self) -> Any: ...


class PowerWindow(Protocol):
    """What the harness needs of a power source (telemetry implements it)."""

    def start(self) -> None: ...
    def stop(self) -> Any: ...


@dataclass(frozen=True)
class Warmup:
    """Warm-up rule. ``seconds`` and ``iterations`` both given: whichever comes last."""

    seconds: float | None = 1.0
    iterations: int | None = None
    until_stable: bool = False
    stable_window: int = 20
    stable_rel_tol: float = 0.02
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.seconds is not None and self.seconds < 0:
            raise UsageError("warm-up seconds must be >= 0", fix="pass --warmup 0 or more")
        if self.iterations is not None and self.iterations < 0:
            raise UsageError(
                "warm-up iterations must be >= 0", fix="pass --warmup-iterations 0 or more"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StopRule:
    """When the measured run ends. Exactly one of duration_s / iterations / ci_rel_halfwidth."""

    duration_s: float | None = None
    iterations: int | None = None
    ci_rel_halfwidth: float | None = None
    min_iterations: int = 100
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        chosen = [x is not None for x in (self.duration_s, self.iterations, self.ci_rel_halfwidth)]
        if sum(chosen) != 1:
            raise UsageError(
                "choose exactly one stop rule",
                fix="pass one of --duration SECONDS, --iterations N, --until-ci FRACTION",
            )
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError("--duration must be > 0 seconds", fix="pass e.g. --duration 10")
        if self.iterations is not None and self.iterations < 1:
            raise UsageError("--iterations must be >= 1", fix="pass e.g. --iterations 1000")
        if self.ci_rel_halfwidth is not None and not 0 < self.ci_rel_halfwidth < 1:
            raise UsageError("--until-ci must be a fraction in (0, 1)", fix="pass e.g. 0.01")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """Raw per-iteration samples of the measured window, in milliseconds."""

    latency_ms: np.ndarray
    enqueue_ms: np.ndarray
    gpu_compute_ms: np.ndarray | None
    warmup_iterations: int
    warmup_s: float
    wall_s: float
    stop_reason: str
    power_trace: Any = None

    @property
    def iterations(self) -> int:
        return int(self.latency_ms.size)

    @property
    def fps(self) -> float:
        return self.iterations / self.wall_s if self.wall_s > 0 else 0.0


def _iterate(
    runner: _Timed, timer: Any, transfers: bool, clock: Clock
) -> tuple[int, int, int, int]:
    t0 = clock()
    if transfers:
        runner.stage_inputs()
    if timer is not None:
        timer.record_start()
    e0 = clock()
    runner.enqueue()
    e1 = clock()
    if timer is not None:
        timer.record_stop()
    if transfers:
        runner.fetch_outputs()
    runner.synchronize()
    t1 = clock()
    return t0, e0, e1, t1


def _warmup(runner: _Timed, rule: Warmup, transfers: bool, clock: Clock) -> tuple[int, float]:
    start = clock()
    need_ns = int((rule.seconds or 0.0) * 1e9)
    need_n = rule.iterations or 0
    cap_ns = int(rule.max_seconds * 1e9)
    recent: list[float] = []
    n = 0
    while True:
        t0, _, _, t1 = _iterate(runner, None, transfers, clock)
        n += 1
        elapsed = t1 - start
        if rule.until_stable:
            recent.append((t1 - t0) / 1e6)
        if elapsed >= cap_ns:
            break
        if n >= need_n and elapsed >= need_ns:
            if not rule.until_stable:
                break
            w = rule.stable_window
            if len(recent) >= 2 * w and is_stable(recent[-2 * w :], rel_tol=rule.stable_rel_tol):
                break
    return n, (clock() - start) / 1e9


def measure(
    runner: _Timed,
    *,
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    transfers: bool = True,
    clock: Clock = time.perf_counter_ns,
    power: PowerWindow | None = None,
    on_progress: ProgressCallback | None = None,
) -> Measurement:
    """Warm up, then time iterations of ``runner`` (inputs already loaded) until ``stop``."""
    warmup = warmup if warmup is not None else Warmup()
    stop = stop if stop is not None else StopRule(duration_s=10.0)
    warm_n, warm_s = _warmup(runner, warmup, transfers, clock)

    timer = runner.device_timer()
    host: list[int] = []
    enq: list[int] = []
    dev: list[float] | None = [] if timer is not None else None
    dur_ns = int(stop.duration_s * 1e9) if stop.duration_s is not None else None
    cap_ns = int(stop.max_seconds * 1e9)
    target_n = stop.iterations
    next_progress = 0
    reason = ""

    if power is not None:
        power.start()
    start = clock()
    try:
        while True:
            t0, e0, e1, t1 = _iterate(runner, timer, transfers, clock)
            host.append(t1 - t0)
            enq.append(e1 - e0)
            if dev is not None:
                dev.append(timer.elapsed_ms())
            n = len(host)
            elapsed = t1 - start
            if target_n is not None and n >= target_n:
                reason = f"reached {target_n} iterations"
                break
            if dur_ns is not None and elapsed >= dur_ns:
                reason = f"reached {stop.duration_s:g} s"
                break
            if elapsed >= cap_ns:
                reason = f"hit the {stop.max_seconds:g} s cap before the stop rule was met"
                break
            if (
                stop.ci_rel_halfwidth is not None
                and n >= stop.min_iterations
                and n % _CI_CHECK_EVERY == 0
            ):
                hw = ci_relative_halfwidth(np.asarray(host, dtype=np.float64), q=50)
                if hw is not None and hw <= stop.ci_rel_halfwidth:
                    reason = (
                        f"median CI half-width {hw:.2%} <= {stop.ci_rel_halfwidth:.2%} "
                        f"after {n} iterations"
                    )
                    break
            if on_progress is not None and elapsed >= next_progress:
                frac = -1.0
                if dur_ns:
                    frac = elapsed / dur_ns
                elif target_n:
                    frac = n / target_n
                on_progress(n, min(frac, 1.0))
                next_progress = elapsed + _PROGRESS_EVERY_NS
        end = clock()
    finally:
        trace = power.stop() if power is not None else None
    if on_progress is not None:
        on_progress(len(host), 1.0)
    return Measurement(
        latency_ms=np.asarray(host, dtype=np.float64) / 1e6,
        enqueue_ms=np.asarray(enq, dtype=np.float64) / 1e6,
        gpu_compute_ms=np.asarray(dev, dtype=np.float64) if dev is not None else None,
        warmup_iterations=warm_n,
        warmup_s=warm_s,
        wall_s=(end - start) / 1e9,
        stop_reason=reason,
        power_trace=trace,
    )
