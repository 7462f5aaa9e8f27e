"""The harness with a fake clock and a fake runner of known cost: what it measures is exact."""

from __future__ import annotations

import numpy as np
import pytest

from orinbench.bench.harness import Measurement, StopRule, Warmup, measure
from orinbench.errors import UsageError

MS = 1_000_000  # ns


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class FakeRunner:
    """Each phase advances the fake clock by a known cost; records the order of calls."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        stage=1 * MS,
        enqueue=2 * MS,
        fetch=1 * MS,
        sync=MS // 2,
        enqueue_costs=None,
        timer=False,
    ) -> None:
        self.clock = clock
        self.costs = {"stage": stage, "enqueue": enqueue, "fetch": fetch, "sync": sync}
        self.enqueue_costs = list(enqueue_costs) if enqueue_costs is not None else None
        self.calls: list[str] = []
        self._timer = timer
        self.enqueues = 0

    def stage_inputs(self) -> None:
        self.calls.append("stage")
        self.clock.now += self.costs["stage"]

    def enqueue(self) -> None:
        self.calls.append("enqueue")
        cost = self.costs["enqueue"]
        if self.enqueue_costs is not None:
            cost = self.enqueue_costs[self.enqueues % len(self.enqueue_costs)]
        self.enqueues += 1
        self.clock.now += cost

    def fetch_outputs(self) -> None:
        self.calls.append("fetch")
        self.clock.now += self.costs["fetch"]

    def synchronize(self) -> None:
        self.calls.append("sync")
        self.clock.now += self.costs["sync"]

    def device_timer(self):
        return FakeTimer(self) if self._timer else None


class FakeTimer:
    """Device time = the enqueue cost that happened between the two events, times 0.9."""

    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner
        self.t0 = 0
        self.t1 = 0

    def record_start(self) -> None:
        self.runner.calls.append("ev0")
        self.t0 = self.runner.clock.now

    def record_stop(self) -> None:
        self.runner.calls.append("ev1")
        self.t1 = self.runner.clock.now

    def elapsed_ms(self) -> float:
        return 0.9 * (self.t1 - self.t0) / MS


class FakePower:
    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner
        self.started_at_call = -1
        self.stopped_at_call = -1

    def start(self) -> None:
        self.started_at_call = len(self.runner.calls)

    def stop(self) -> str:
        self.stopped_at_call = len(self.runner.calls)
        return "trace"


def test_iteration_phases_are_timed_separately_and_in_order() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock, timer=True)
    m = measure(
        runner, warmup=Warmup(seconds=0, iterations=3), stop=StopRule(iterations=10), clock=clock
    )
    assert isinstance(m, Measurement)
    assert m.iterations == 10
    np.testing.assert_allclose(m.latency_ms, 4.5)  # 1 + 2 + 1 + 0.5
    np.testing.assert_allclose(m.enqueue_ms, 2.0)
    assert m.gpu_compute_ms is not None
    np.testing.assert_allclose(m.gpu_compute_ms, 1.8)
    assert m.warmup_iterations == 3
    # warm-up iterations have no events; measured ones put the events around the enqueue only
    measured = runner.calls[3 * 4 :]
    assert measured[:6] == ["stage", "ev0", "enqueue", "ev1", "fetch", "sync"]
    assert m.stop_reason == "reached 10 iterations"
    assert m.fps == pytest.approx(1000 / 4.5)


def test_no_transfers_skips_copies() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock)
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(iterations=5),
        transfers=False,
        clock=clock,
    )
    np.testing.assert_allclose(m.latency_ms, 2.5)
    assert "stage" not in runner.calls and "fetch" not in runner.calls
    assert m.gpu_compute_ms is None


def test_duration_rule_stops_after_the_duration() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock)
    m = measure(runner, warmup=Warmup(seconds=0.05), stop=StopRule(duration_s=1.0), clock=clock)
    # 4.5 ms per iteration: the first iteration ending at or after 1 s is number ceil(1000/4.5)
    assert m.iterations == int(np.ceil(1000 / 4.5))
    assert m.warmup_iterations == int(np.ceil(50 / 4.5))
    assert m.stop_reason == "reached 1 s"
    assert m.wall_s == pytest.approx(m.iterations * 4.5e-3)


def test_warmup_until_stable_runs_past_a_slow_start() -> None:
    clock = FakeClock()
    # cold start: the cost decays from 10 ms towards 2 ms (caches, clocks ramping up)
    costs = [int(2 * MS + 8 * MS * 0.95**i) for i in range(10_000)]
    runner = FakeRunner(clock, enqueue_costs=costs, stage=0, fetch=0, sync=0)
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=1, until_stable=True, stable_window=20),
        stop=StopRule(iterations=50),
        clock=clock,
    )
    # a fixed 40-iteration warm-up would still see > 3 ms; until-stable waits for the decay
    assert m.warmup_iterations > 40
    assert float(np.median(m.latency_ms)) < 2.1
    # and it stops once settled instead of running to the 30 s cap
    assert m.warmup_s < 1.0


def test_ci_stop_rule_stops_when_the_median_is_known_well_enough() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(1)
    costs = (2 * MS + rng.integers(0, MS // 10, size=5000)).tolist()
    runner = FakeRunner(clock, enqueue_costs=costs, stage=0, fetch=0, sync=0)
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(ci_rel_halfwidth=0.01, min_iterations=100),
        clock=clock,
    )
    assert 100 <= m.iterations < 5000
    assert "CI half-width" in m.stop_reason


def test_ci_stop_rule_is_capped() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(2)
    costs = (rng.integers(1, 20, size=1000) * MS).tolist()  # very noisy
    runner = FakeRunner(clock, enqueue_costs=costs, stage=0, fetch=0, sync=0)
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(ci_rel_halfwidth=0.0001, max_seconds=1.0),
        clock=clock,
    )
    assert "cap" in m.stop_reason
    assert m.wall_s >= 1.0


def test_power_window_brackets_only_the_measured_iterations() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock)
    power = FakePower(runner)
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=2),
        stop=StopRule(iterations=3),
        clock=clock,
        power=power,
    )
    assert power.started_at_call == 2 * 4  # after the warm-up's phases, before the first timed one
    assert power.stopped_at_call == 5 * 4
    assert m.power_trace == "trace"


def test_power_is_stopped_when_the_runner_fails() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock)
    power = FakePower(runner)

    def boom() -> None:
        raise RuntimeError("device lost")

    calls = {"n": 0}
    original = runner.enqueue

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            boom()
        original()

    runner.enqueue = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        measure(
            runner,
            warmup=Warmup(seconds=0, iterations=1),
            stop=StopRule(iterations=10),
            clock=clock,
            power=power,
        )
    assert power.stopped_at_call >= 0


def test_progress_reports_and_finishes_at_one() -> None:
    clock = FakeClock()
    runner = FakeRunner(clock)
    seen: list[tuple[int, float]] = []
    measure(
        runner,
        warmup=Warmup(seconds=0),
        stop=StopRule(duration_s=1.0),
        clock=clock,
        on_progress=lambda n, f: seen.append((n, f)),
    )
    assert seen[-1][1] == 1.0
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert len(seen) >= 4  # every 250 ms of a 1 s run


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"duration_s": 1, "iterations": 5},
        {"duration_s": 0},
        {"iterations": 0},
        {"ci_rel_halfwidth": 1.5},
    ],
)
def test_bad_stop_rules_are_usage_errors(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        StopRule(**kwargs)


def test_negative_warmup_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Warmup(seconds=-1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_times_are_usage_errors(bad: float) -> None:
    # NaN fails every comparison, so `x < 0` and `x <= 0` let it through
    with pytest.raises(UsageError, match="warm-up seconds must be a finite number"):
        Warmup(seconds=bad)
    with pytest.raises(UsageError, match="--duration must be a finite number"):
        StopRule(duration_s=bad)
    with pytest.raises(UsageError, match="--max-seconds must be a finite number"):
        StopRule(iterations=5, max_seconds=bad)
    with pytest.raises(UsageError, match="--max-seconds must be a finite number"):
        StopRule(until_decided=True, max_seconds=bad, looks=3)
