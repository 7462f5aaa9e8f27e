"""Pipeline timing with a fake clock and fake stages of known cost: what it measures is exact."""

from __future__ import annotations

import numpy as np
import pytest

from orinbench.bench.harness import StopRule, Warmup
from orinbench.pipeline.harness import measure_pipeline

MS = 1_000_000  # ns


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class Timer:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.t0 = 0
        self.t1 = 0

    def record_start(self) -> None:
        self.t0 = self.stage.clock.now

    def record_stop(self) -> None:
        self.t1 = self.stage.clock.now

    def elapsed_ms(self) -> float:
        return 0.5 * (self.t1 - self.t0) / MS  # "device" time: half the enqueue, known exactly


class Stage:
    """Each phase advances the clock by a known cost; enqueue costs may vary frame to frame."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        log: list[str],
        *,
        enqueue: list[int],
        stage: int = 0,
        fetch: int = 0,
        sync: int = 0,
        fetches: bool = False,
        timer: bool = False,
    ) -> None:
        self.name = name
        self.clock = clock
        self.log = log
        self.costs = enqueue
        self.stage_cost, self.fetch_cost, self.sync_cost = stage, fetch, sync
        self.fetches = fetches
        self.timer = timer
        self.n = 0

    def stage_inputs(self) -> None:
        self.log.append(f"{self.name}.stage")
        self.clock.now += self.stage_cost

    def enqueue(self) -> None:
        self.log.append(f"{self.name}.enqueue")
        self.clock.now += self.costs[self.n % len(self.costs)]
        self.n += 1

    def fetch_outputs(self) -> None:
        self.log.append(f"{self.name}.fetch")
        self.clock.now += self.fetch_cost

    def synchronize(self) -> None:
        self.log.append(f"{self.name}.sync")
        self.clock.now += self.sync_cost

    def device_timer(self) -> Timer | None:
        return Timer(self) if self.timer else None


def _stages(clock: Clock, log: list[str]) -> list[Stage]:
    return [
        Stage("backbone", clock, log, enqueue=[3 * MS, 5 * MS], stage=MS, sync=MS // 2, timer=True),
        Stage("step", clock, log, enqueue=[2 * MS]),
        Stage("head", clock, log, enqueue=[MS, 2 * MS, 4 * MS], fetch=MS, fetches=True, timer=True),
    ]


def test_stage_times_are_exact_and_add_up_to_the_frame() -> None:
    clock, log = Clock(), []
    stages = _stages(clock, log)
    pm = measure_pipeline(
        stages, warmup=Warmup(seconds=0, iterations=0), stop=StopRule(iterations=12), clock=clock
    )
    assert pm.frame.iterations == 12
    bb, step, head = pm.stages
    # one warm-up frame always runs first, so measured frame i used enqueue cost index i + 1
    idx = np.arange(1, 13)
    bb_enq = np.where(idx % 2 == 0, 3.0, 5.0)
    head_enq = np.array([1.0, 2.0, 4.0])[idx % 3]
    np.testing.assert_allclose(bb.enqueue_ms, bb_enq)
    np.testing.assert_allclose(bb.latency_ms, bb_enq + 1.0 + 0.5)  # + H2D + sync
    np.testing.assert_allclose(step.latency_ms, 2.0)
    np.testing.assert_allclose(head.latency_ms, head_enq + 1.0)  # + D2H of the final outputs
    np.testing.assert_allclose(bb.gpu_compute_ms, 0.5 * bb_enq)
    assert step.gpu_compute_ms is None
    # per frame, the stages add up to the end-to-end latency exactly (the fake clock only moves
    # inside the stages, so the harness overhead is zero here)
    np.testing.assert_allclose(pm.stage_sum_ms, pm.frame.latency_ms)
    np.testing.assert_allclose(pm.overhead_ms, 0.0)
    # the frame's enqueue is the stages' enqueue; its device time the timed stages' device time
    np.testing.assert_allclose(pm.frame.enqueue_ms, bb_enq + 2.0 + head_enq)
    np.testing.assert_allclose(pm.frame.gpu_compute_ms, 0.5 * (bb_enq + head_enq))


def test_phases_run_in_order_and_only_final_stages_fetch() -> None:
    clock, log = Clock(), []
    measure_pipeline(
        _stages(clock, log),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(iterations=1),
        clock=clock,
    )
    frame = [
        "backbone.stage", "backbone.enqueue", "backbone.sync",
        "step.stage", "step.enqueue", "step.sync",
        "head.stage", "head.enqueue", "head.fetch", "head.sync",
    ]  # fmt: skip
    assert log == frame * 2  # the warm-up frame, then the measured one


def test_without_transfers_no_input_or_output_copies() -> None:
    clock, log = Clock(), []
    pm = measure_pipeline(
        _stages(clock, log),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(iterations=3),
        transfers=False,
        clock=clock,
    )
    assert not any(e.endswith((".stage", ".fetch")) for e in log)
    assert {e.split(".")[1] for e in log} == {"enqueue", "sync"}
    np.testing.assert_allclose(pm.stage_sum_ms, pm.frame.latency_ms)


def test_warm_up_frames_are_dropped_and_samples_stay_aligned() -> None:
    clock, log = Clock(), []
    # the step's cost grows every frame, so a misaligned slice would show
    stages = [Stage("grow", clock, log, enqueue=[(i + 1) * MS for i in range(100)])]
    pm = measure_pipeline(
        stages, warmup=Warmup(seconds=0, iterations=5), stop=StopRule(iterations=7), clock=clock
    )
    assert pm.frame.warmup_iterations == 5
    np.testing.assert_allclose(pm.stages[0].latency_ms, np.arange(6, 13, dtype=float))
    np.testing.assert_allclose(pm.frame.latency_ms, np.arange(6, 13, dtype=float))


@pytest.mark.parametrize("n", [1, 50])
def test_every_stage_has_one_sample_per_measured_frame(n: int) -> None:
    clock, log = Clock(), []
    pm = measure_pipeline(
        _stages(clock, log),
        warmup=Warmup(seconds=0.01),
        stop=StopRule(iterations=n),
        clock=clock,
    )
    assert all(s.latency_ms.size == n == s.enqueue_ms.size for s in pm.stages)
    assert pm.frame.latency_ms.size == n
