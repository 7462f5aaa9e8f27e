"""--until-ci on a percentile (stop on the tail), the stop-rule code in the result, the CLI form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orinbench.bench.harness import STOPPED_BY, StopRule, Warmup, measure, parse_until_ci
from orinbench.bench.stats import ci_relative_halfwidth
from orinbench.errors import UsageError
from orinbench.results import load_result, result_from_dict

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class CostRunner:
    """Each iteration's enqueue costs the next of ``costs`` (ns) on the fake clock; nothing else."""

    def __init__(self, clock: Clock, costs: np.ndarray) -> None:
        self.clock = clock
        self.costs = [int(c) for c in costs]
        self.i = 0

    def stage_inputs(self) -> None:
        pass

    def enqueue(self) -> None:
        self.clock.now += self.costs[self.i % len(self.costs)]
        self.i += 1

    def fetch_outputs(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def device_timer(self) -> None:
        return None


def _tail_heavy(seed: int, size: int = 40_000) -> np.ndarray:
    """A tight body (2 ms +- 1 %) with a wide 3 % tail up to 4 ms: the median settles long
    before the P99 does."""
    rng = np.random.default_rng(seed)
    body = 2 * MS * (1 + 0.01 * rng.standard_normal(size))
    tail = rng.random(size) < 0.03
    return np.where(tail, 2 * MS + rng.random(size) * 2 * MS, body)


@pytest.mark.parametrize(
    ("text", "q", "frac"),
    [
        ("0.01", 50.0, 0.01),
        ("1%", 50.0, 0.01),
        ("p99:2%", 99.0, 0.02),
        ("P95:0.03", 95.0, 0.03),
        ("p99.9:5%", 99.9, 0.05),
        (" p90 : 4 % ", 90.0, 0.04),
    ],
)
def test_until_ci_text_is_parsed(text: str, q: float, frac: float) -> None:
    got_q, got_frac = parse_until_ci(text)
    assert got_q == q
    assert got_frac == pytest.approx(frac)


@pytest.mark.parametrize(
    "text", ["p99", "p99:", "x:2%", "p100:2%", "p0:2%", "p99:0", "150%", "1.5"]
)
def test_bad_until_ci_text_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_until_ci(text)


def test_stop_on_the_tail_waits_for_the_p99_interval() -> None:
    costs = _tail_heavy(3)
    rule = StopRule(ci_rel_halfwidth=0.02, ci_percentile=99.0, max_seconds=600.0)
    m = measure(
        CostRunner(clock := Clock(), costs),
        warmup=Warmup(seconds=0, iterations=0),
        stop=rule,
        clock=clock,
    )
    assert m.stopped_by == "ci"
    assert m.stop_reason.startswith("P99 CI half-width")
    # stopped because the P99 interval became narrow enough, and not before
    assert ci_relative_halfwidth(m.latency_ms, 99) <= 0.02
    assert ci_relative_halfwidth(m.latency_ms[:-50], 99) > 0.02
    # the median rule on the same samples stops far earlier: the tail rule really watched P99
    median = measure(
        CostRunner(clock2 := Clock(), costs),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(ci_rel_halfwidth=0.02, max_seconds=600.0),
        clock=clock2,
    )
    assert median.stopped_by == "ci" and median.stop_reason.startswith("median CI")
    assert median.iterations * 3 < m.iterations


def test_stop_on_the_tail_is_bounded_by_max_seconds() -> None:
    m = measure(
        CostRunner(clock := Clock(), _tail_heavy(4)),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(ci_rel_halfwidth=0.001, ci_percentile=99.0, max_seconds=2.0),
        clock=clock,
    )
    assert m.stopped_by == "max-seconds"
    assert "2 s cap" in m.stop_reason
    assert m.wall_s >= 2.0


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (StopRule(iterations=10), "iterations"),
        (StopRule(duration_s=0.05), "duration"),
    ],
)
def test_every_rule_records_its_code(rule: StopRule, code: str) -> None:
    m = measure(
        CostRunner(clock := Clock(), np.full(10, MS)),
        warmup=Warmup(seconds=0, iterations=0),
        stop=rule,
        clock=clock,
    )
    assert m.stopped_by == code
    assert code in STOPPED_BY


def test_stop_rule_refuses_a_percentile_out_of_range() -> None:
    with pytest.raises(UsageError, match="percentile"):
        StopRule(ci_rel_halfwidth=0.02, ci_percentile=100.0)


def test_stopped_by_round_trips_and_old_files_read_as_unknown(tmp_path: Path) -> None:
    golden = Path(__file__).parent / "golden" / "result-v1.json"
    d = json.loads(golden.read_text())
    assert "stopped_by" not in d["quality"]  # a file written before the field existed
    old = result_from_dict(d)
    assert old.stopped_by == ""
    new = result_from_dict({**d, "quality": {**d["quality"], "stopped_by": "ci"}})
    assert new.stopped_by == "ci"
    assert result_from_dict(new.to_dict()).stopped_by == "ci"


FAST = ("--warmup", "0", "--power", "none", "--no-history", "-q")


def test_cli_until_ci_on_p99_records_the_rule(run_cli, conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "bench",
        str(conv_model),
        "--until-ci",
        "p99:50%",
        "--max-seconds",
        "20",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, err
    r = load_result(out)
    assert r.config.stop["ci_percentile"] == 99.0
    assert r.config.stop["ci_rel_halfwidth"] == pytest.approx(0.5)
    assert r.stopped_by in ("ci", "max-seconds")
    if r.stopped_by == "ci":
        assert r.stop_reason.startswith("P99 CI half-width")
        # a P99 interval exists only from 368 samples on: the rule cannot have stopped earlier
        assert len(r.samples["latency"]) >= 368


def test_cli_bad_until_ci_is_one_line_exit_2(run_cli, conv_model: Path) -> None:
    code, _, err = run_cli("bench", str(conv_model), "--until-ci", "p99:two", *FAST)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--until-ci" in lines[0] and "Traceback" not in err


def test_min_tail_samples_puts_ten_samples_beyond_the_percentile() -> None:
    from orinbench.bench.stats import TAIL_SAMPLES, min_tail_samples

    assert TAIL_SAMPLES == 10
    got = {q: min_tail_samples(q) for q in (0.5, 0.9, 0.95, 0.99, 0.999, 0.01, 0.05)}
    assert got == {0.5: 20, 0.9: 100, 0.95: 200, 0.99: 1000, 0.999: 10000, 0.01: 1000, 0.05: 200}
    # the smallest such n: one fewer puts less than 10 beyond on average (floating point aside)
    for q in (0.9, 0.95, 0.99, 0.999, 0.975, 0.3):
        n = min_tail_samples(q)
        side = min(q, 1 - q)
        assert n * side >= 10 - 1e-9 and (n - 1) * side < 10 - 1e-9
    assert min_tail_samples(0.99, tail=1) == 100
    with pytest.raises(UsageError):
        min_tail_samples(1.0)


def test_the_tail_rule_waits_for_1000_samples_before_it_may_stop() -> None:
    # 2 ms +- a little, no tail at all: the P99 interval is narrow from the first check, yet a
    # P99 rule may stop only once 1000 samples are in (10 beyond P99); the median rule at 100
    rng = np.random.default_rng(7)
    costs = 2 * MS * (1 + 0.001 * rng.standard_normal(5000))
    assert ci_relative_halfwidth(costs[:400], 99) < 0.02  # it would have stopped at 400
    runs = {}
    for q in (99.0, 50.0):
        runs[q] = measure(
            CostRunner(clock := Clock(), costs),
            warmup=Warmup(seconds=0, iterations=0),
            stop=StopRule(ci_rel_halfwidth=0.02, ci_percentile=q, max_seconds=600.0),
            clock=clock,
        )
    assert runs[99.0].stopped_by == "ci" and runs[99.0].iterations == 1000
    assert runs[50.0].stopped_by == "ci" and runs[50.0].iterations == 100
    # an explicit higher minimum still wins
    later = measure(
        CostRunner(clock := Clock(), costs),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(
            ci_rel_halfwidth=0.02, ci_percentile=99.0, max_seconds=600.0, min_iterations=1500
        ),
        clock=clock,
    )
    assert later.iterations == 1500
