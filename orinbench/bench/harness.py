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
count, by duration, when the distribution-free confidence interval of a percentile (the median by
default, ``ci_percentile``) is narrower than ``ci_rel_halfwidth`` of it (bounded by
``max_seconds``), or, with ``until_decided``, when a look callback says the samples so far decide
the question (looks every ``max_seconds / looks`` seconds; the budget ends the run at the last).
The rule, the reason the run stopped and a short code for it (:data:`STOPPED_BY`) are recorded in
the result.

A power source is started right before the measured window and stopped right after it; the loop
never waits on it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from .stats import ci_relative_halfwidth, is_stable, min_tail_samples

Clock = Callable[[], int]
#: called with (iterations done, fraction of the run done or -1 when unknown) a few times a second
ProgressCallback = Callable[[int, float], None]
#: called at each planned look of an ``until_decided`` run with (look number, 1-based, and the
#: samples so far as a :class:`Measurement` without power); returns a stop reason, or None to go on
LookCallback = Callable[[int, "Measurement"], "str | None"]

#: the codes of :attr:`Measurement.stopped_by`: which rule ended the measured run
STOPPED_BY: tuple[str, ...] = ("iterations", "duration", "ci", "decided", "max-seconds")
#: default length of one block of an ``until_decided`` run (seconds between looks)
DEFAULT_BLOCK_S = 10.0
#: default budget of an ``until_decided`` run (seconds)
DEFAULT_DECIDE_BUDGET_S = 60.0

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
        # `not x >= 0` rather than `x < 0`: NaN fails every comparison, and inf never ends
        if self.seconds is not None and not (self.seconds >= 0 and math.isfinite(self.seconds)):
            raise UsageError(
                f"warm-up seconds must be a finite number >= 0, not {self.seconds:g}",
                fix="pass --warmup 0 or more",
            )
        if self.iterations is not None and self.iterations < 0:
            raise UsageError(
                "warm-up iterations must be >= 0", fix="pass --warmup-iterations 0 or more"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StopRule:
    """When the measured run ends. Exactly one of duration_s / iterations / ci_rel_halfwidth /
    until_decided.

    ``ci_rel_halfwidth`` stops once the distribution-free CI of percentile ``ci_percentile``
    (default 50, the median) has a half-width at most that fraction of the percentile.
    ``until_decided`` measures in ``looks`` blocks of ``max_seconds / looks`` seconds and asks the
    look callback after each whether to stop. ``max_seconds`` bounds both.
    """

    duration_s: float | None = None
    iterations: int | None = None
    ci_rel_halfwidth: float | None = None
    min_iterations: int = 100
    max_seconds: float = 600.0
    ci_percentile: float = 50.0
    until_decided: bool = False
    looks: int = 1

    def __post_init__(self) -> None:
        chosen = [x is not None for x in (self.duration_s, self.iterations, self.ci_rel_halfwidth)]
        if sum(chosen) + int(self.until_decided) != 1:
            raise UsageError(
                "choose exactly one stop rule",
                fix="pass one of --duration SECONDS, --iterations N, --until-ci [pQ:]FRACTION, "
                "--until-decided",
            )
        if self.duration_s is not None and not (
            self.duration_s > 0 and math.isfinite(self.duration_s)
        ):
            raise UsageError(
                f"--duration must be a finite number > 0 seconds, not {self.duration_s:g}",
                fix="pass e.g. --duration 10",
            )
        if self.iterations is not None and self.iterations < 1:
            raise UsageError("--iterations must be >= 1", fix="pass e.g. --iterations 1000")
        if self.ci_rel_halfwidth is not None and not 0 < self.ci_rel_halfwidth < 1:
            raise UsageError("--until-ci must be a fraction in (0, 1)", fix="pass e.g. 0.01")
        if not 0.0 < self.ci_percentile < 100.0:
            raise UsageError(
                f"--until-ci percentile {self.ci_percentile:g} is out of range",
                fix="give a percentile between 0 and 100, e.g. --until-ci p99:2%",
            )
        if not (self.max_seconds > 0 and math.isfinite(self.max_seconds)):
            raise UsageError(
                f"--max-seconds must be a finite number > 0, not {self.max_seconds:g}",
                fix="pass e.g. --max-seconds 60",
            )
        if self.looks < 1:
            raise UsageError("the number of looks must be >= 1", fix="pass e.g. 6")

    @property
    def block_s(self) -> float:
        """Seconds between two looks of an ``until_decided`` run."""
        return self.max_seconds / self.looks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_until_ci(text: str) -> tuple[float, float]:
    """``--until-ci`` text -> (percentile, relative half-width as a fraction).

    Accepted: ``0.01`` (the median, 1 %), ``1%``, ``p99:2%``, ``p99.9:0.05``, ``P95:3%``.
    """
    m = re.fullmatch(r"\s*(?:[pP](\d+(?:\.\d+)?)\s*:\s*)?([0-9.eE+-]+)\s*(%?)\s*", text)
    value: float | None = None
    if m is not None:
        try:
            value = float(m.group(2))
        except ValueError:
            value = None
    if m is None or value is None or not math.isfinite(value):
        raise UsageError(
            f"cannot read --until-ci {text!r}",
            why="expected [pQ:]FRACTION or [pQ:]PERCENT%",
            fix="pass e.g. --until-ci 0.01 (median, 1 %) or --until-ci p99:2%",
        )
    q = float(m.group(1)) if m.group(1) is not None else 50.0
    frac = value / 100.0 if m.group(3) else value
    if not 0.0 < q < 100.0:
        raise UsageError(
            f"--until-ci percentile p{q:g} is out of range",
            fix="give a percentile between 0 and 100, e.g. p99",
        )
    if not 0.0 < frac < 1.0:
        raise UsageError(
            f"--until-ci {text!r} is not a half-width between 0 and 100 %",
            fix="pass e.g. --until-ci p99:2% or --until-ci 0.02",
        )
    return q, frac


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
    #: which rule ended the run, one of :data:`STOPPED_BY` ("" for a snapshot still running)
    stopped_by: str = ""

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
    on_look: LookCallback | None = None,
) -> Measurement:
    """Warm up, then time iterations of ``runner`` (inputs already loaded) until ``stop``.

    With ``stop.until_decided``, ``on_look`` is called after each block; the time it takes is
    left out of the measured window (``wall_s`` and the block boundaries), so deciding does not
    lower the throughput it judges.
    """
    warmup = warmup if warmup is not None else Warmup()
    stop = stop if stop is not None else StopRule(duration_s=10.0)
    if stop.until_decided and on_look is None:
        raise UsageError(
            "--until-decided needs something to decide against",
            fix="give --baseline FILE or --baseline-dir DIR",
        )
    warm_n, warm_s = _warmup(runner, warmup, transfers, clock)

    timer = runner.device_timer()
    host: list[int] = []
    enq: list[int] = []
    dev: list[float] | None = [] if timer is not None else None
    dur_ns = int(stop.duration_s * 1e9) if stop.duration_s is not None else None
    cap_ns = int(stop.max_seconds * 1e9)
    target_n = stop.iterations
    block_ns = cap_ns / stop.looks if stop.until_decided else math.inf
    look = 0
    paused = 0  # ns spent in look callbacks, not part of the measured window
    next_progress = 0
    reason = ""
    stopped_by = ""
    ci_label = "median" if stop.ci_percentile == 50.0 else f"P{stop.ci_percentile:g}"
    # a tail percentile's interval is trusted only once its tail holds some samples
    ci_min_n = max(stop.min_iterations, min_tail_samples(stop.ci_percentile / 100.0))

    def snapshot(elapsed: int) -> Measurement:
        return Measurement(
            latency_ms=np.asarray(host, dtype=np.float64) / 1e6,
            enqueue_ms=np.asarray(enq, dtype=np.float64) / 1e6,
            gpu_compute_ms=np.asarray(dev, dtype=np.float64) if dev is not None else None,
            warmup_iterations=warm_n,
            warmup_s=warm_s,
            wall_s=elapsed / 1e9,
            stop_reason="",
        )

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
            elapsed = t1 - start - paused
            if target_n is not None and n >= target_n:
                reason, stopped_by = f"reached {target_n} iterations", "iterations"
                break
            if dur_ns is not None and elapsed >= dur_ns:
                reason, stopped_by = f"reached {stop.duration_s:g} s", "duration"
                break
            if on_look is not None and stop.until_decided and elapsed >= (look + 1) * block_ns:
                look += 1
                pause_start = clock()
                verdict = on_look(look, snapshot(elapsed))
                paused += clock() - pause_start
                if verdict is not None:
                    reason, stopped_by = verdict, "decided"
                    break
                if look >= stop.looks:
                    reason = (
                        f"the {stop.max_seconds:g} s budget ended after {look} looks "
                        "before every metric was decided"
                    )
                    stopped_by = "max-seconds"
                    break
                continue
            if elapsed >= cap_ns and not stop.until_decided:
                reason = f"hit the {stop.max_seconds:g} s cap before the stop rule was met"
                stopped_by = "max-seconds"
                break
            if stop.ci_rel_halfwidth is not None and n >= ci_min_n and n % _CI_CHECK_EVERY == 0:
                hw = ci_relative_halfwidth(np.asarray(host, dtype=np.float64), q=stop.ci_percentile)
                if hw is not None and hw <= stop.ci_rel_halfwidth:
                    reason = (
                        f"{ci_label} CI half-width {hw:.2%} <= {stop.ci_rel_halfwidth:.2%} "
                        f"after {n} iterations"
                    )
                    stopped_by = "ci"
                    break
            if on_progress is not None and elapsed >= next_progress:
                frac = -1.0
                if dur_ns:
                    frac = elapsed / dur_ns
                elif target_n:
                    frac = n / target_n
                elif stop.until_decided:
                    frac = elapsed / cap_ns
                on_progress(n, min(frac, 1.0))
                next_progress = elapsed + _PROGRESS_EVERY_NS
        end = clock() - paused
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
        stopped_by=stopped_by,
    )
