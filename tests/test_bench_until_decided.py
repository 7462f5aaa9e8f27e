"""bench --until-decided: the harness's looks (fake clock), the judge through bench_runner (fake
runner of known cost), and the CLI's refusals and result."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_double import pytest_fixtures as fx

from orinbench.bench.harness import Measurement, StopRule, Warmup, measure
from orinbench.bench.run import bench_runner
from orinbench.errors import UsageError
from orinbench.gate.sequential import SequentialGate, SpendingPlan
from orinbench.results import load_result
from orinbench.results.schema import ModelRef, Result

MS = 1_000_000
trt_env = fx.trt_env


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class LawRunner:
    """A runner whose every iteration costs a draw of a lognormal law (ns) on the fake clock."""

    backend = "onnxruntime"
    backend_version = "fake"
    inputs: tuple = ()
    outputs: tuple = ()

    def __init__(
        self, clock: Clock, *, seed: int, cv: float = 0.05, mean_ms: float = 5.0, scale=1.0
    ) -> None:
        sigma = math.sqrt(math.log1p(cv * cv))
        rng = np.random.default_rng(seed)
        self.costs = (
            rng.lognormal(math.log(mean_ms) - sigma**2 / 2, sigma, 200_000) * scale * MS
        ).astype(np.int64)
        self.clock = clock
        self.i = 0

    def load_inputs(self, feed: Mapping[str, Any]) -> None:
        pass

    def stage_inputs(self) -> None:
        pass

    def enqueue(self) -> None:
        self.clock.now += int(self.costs[self.i])
        self.i += 1

    def fetch_outputs(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def device_timer(self) -> None:
        return None


MODEL = ModelRef(path="m.onnx", sha256="0" * 64, inputs=(), outputs=(), name="m")


def _bench(runner: LawRunner, clock: Clock, stop: StopRule, judge=None) -> Result:
    return bench_runner(
        runner,
        model=MODEL,
        feed={},
        shapes={},
        warmup=Warmup(seconds=0, iterations=0),
        stop=stop,
        clock=clock,
        judge=judge,
    )


# -- the harness ------------------------------------------------------------------------------


def test_looks_happen_at_block_boundaries_and_their_time_is_not_measured() -> None:
    clock = Clock()
    seen: list[tuple[int, int, float]] = []

    def on_look(k: int, snap: Measurement) -> str | None:
        seen.append((k, snap.iterations, snap.wall_s))
        clock.now += 5_000 * MS  # a slow decision: 5 s that must not count as measuring
        return None

    runner = LawRunner(clock, seed=1, cv=0.0, mean_ms=10.0)  # exactly 10 ms per iteration
    m = measure(
        runner,
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(until_decided=True, max_seconds=3.0, looks=3),
        clock=clock,
        on_look=on_look,
    )
    assert [k for k, _, _ in seen] == [1, 2, 3]
    assert [n for _, n, _ in seen] == [100, 200, 300]
    assert [w for _, _, w in seen] == pytest.approx([1.0, 2.0, 3.0])
    assert m.stopped_by == "max-seconds"
    assert "3 s budget ended after 3 looks" in m.stop_reason
    assert m.iterations == 300
    assert m.wall_s == pytest.approx(3.0)  # the 15 s spent deciding are left out
    assert m.fps == pytest.approx(100.0)


def test_a_decision_stops_the_run_at_that_look() -> None:
    clock = Clock()
    m = measure(
        LawRunner(clock, seed=2, cv=0.0, mean_ms=10.0),
        warmup=Warmup(seconds=0, iterations=0),
        stop=StopRule(until_decided=True, max_seconds=6.0, looks=6),
        clock=clock,
        on_look=lambda k, snap: "decided now" if k == 2 else None,
    )
    assert m.stopped_by == "decided" and m.stop_reason == "decided now"
    assert m.iterations == 200


def test_until_decided_without_a_judge_is_a_usage_error() -> None:
    clock = Clock()
    with pytest.raises(UsageError, match="baseline"):
        measure(
            LawRunner(clock, seed=3),
            warmup=Warmup(seconds=0, iterations=0),
            stop=StopRule(until_decided=True, max_seconds=1.0),
            clock=clock,
        )
    with pytest.raises(UsageError, match="exactly one stop rule"):
        StopRule(until_decided=True, duration_s=1.0)


# -- the judge through bench_runner -------------------------------------------------------------


def _baseline(seed: int, cv: float) -> Result:
    clock = Clock()
    return _bench(LawRunner(clock, seed=seed, cv=cv), clock, StopRule(duration_s=10.0))


def _until_decided(
    baseline: Result,
    *,
    seed: int,
    cv: float,
    scale: float,
    budget: float = 60.0,
    tolerances: dict[str, float] | None = None,
):
    clock = Clock()
    gate = SequentialGate(
        baseline, plan=SpendingPlan(looks=round(budget / 10)), tolerances=tolerances
    )
    result = _bench(
        LawRunner(clock, seed=seed, cv=cv, scale=scale),
        clock,
        StopRule(until_decided=True, max_seconds=budget, looks=round(budget / 10)),
        judge=gate,
    )
    report = gate.report(result, budget_ended=result.stopped_by == "max-seconds")
    return result, report, gate


def test_a_a_stops_with_unchanged_before_the_budget() -> None:
    base = _baseline(10, cv=0.03)
    result, report, _gate = _until_decided(base, seed=11, cv=0.03, scale=1.0)
    assert result.stopped_by == "decided"
    assert result.throughput["wall_s"] < 60.0
    assert {v.status for v in report.verdicts} == {"unchanged"}
    assert report.exit_code == 0
    assert result.config.stop["until_decided"] is True and result.config.stop["looks"] == 6
    assert "every gated metric decided" in result.stop_reason


def test_a_ten_percent_slowdown_stops_with_regressed() -> None:
    base = _baseline(12, cv=0.05)
    result, report, _ = _until_decided(base, seed=13, cv=0.05, scale=1.10)
    assert result.stopped_by == "decided"
    statuses = {v.metric: v.status for v in report.verdicts}
    assert statuses["latency.p99_ms"] == "regressed"
    assert set(statuses.values()) == {"regressed"}
    assert report.exit_code == 1


def test_an_exhausted_budget_is_inconclusive_and_fails_closed() -> None:
    base = _baseline(14, cv=0.10)
    # a 0.5 % tolerance on a noisy P99: neither shown within it nor shown to have moved
    result, report, gate = _until_decided(
        base, seed=15, cv=0.10, scale=1.0, budget=20.0, tolerances={"latency.p99_ms": 0.005}
    )
    assert result.stopped_by == "max-seconds"
    assert result.throughput["wall_s"] == pytest.approx(20.0, abs=0.05)
    (p99,) = [v for v in report.verdicts if v.metric == "latency.p99_ms"]
    assert p99.status == "inconclusive", p99
    assert "not decided by the 2 looks" in p99.message and "not significant" in p99.message
    assert report.exit_code == 1
    assert [lk.look for lk in gate.looks] == [1, 2]


# -- the CLI ---------------------------------------------------------------------------------

FAST = ("--warmup", "0", "--power", "none", "--no-history", "-q")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_until_decided_without_a_baseline_is_exit_2(run_cli, conv_model: Path) -> None:
    code, _, err = run_cli("bench", str(conv_model), "--until-decided", *FAST)
    assert code == 2
    assert "--baseline" in _one_line(err)


def test_until_decided_with_another_stop_rule_is_exit_2(
    run_cli, conv_model: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        "bench",
        str(conv_model),
        "--until-decided",
        "--baseline",
        "b.json",
        "--iterations",
        "5",
        *FAST,
    )
    assert code == 2
    assert "--iterations" in _one_line(err)


def test_baseline_without_until_decided_is_exit_2(run_cli, conv_model: Path) -> None:
    code, _, err = run_cli("bench", str(conv_model), "--baseline", "b.json", *FAST)
    assert code == 2
    assert "--until-decided" in _one_line(err)


@pytest.fixture
def baseline_file(run_cli, conv_model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "base.json"
    code, _, err = run_cli(
        "bench", str(conv_model), "--iterations", "400", "--out", str(out), *FAST
    )
    assert code == 0, err
    return out


def test_baseline_of_another_environment_is_exit_3_before_measuring(
    run_cli, conv_model: Path, baseline_file: Path, tmp_path: Path
) -> None:
    d = json.loads(baseline_file.read_text())
    d["environment"]["backend"]["name"] = "tensorrt"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(d))
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "bench",
        str(conv_model),
        "--until-decided",
        "--baseline",
        str(other),
        "--max-seconds",
        "30",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 3
    assert "backend" in _one_line(err)
    assert not out.exists()


def test_missing_baseline_in_dir_is_exit_2(run_cli, conv_model: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(
        "bench",
        str(conv_model),
        "--until-decided",
        "--baseline-dir",
        str(tmp_path / "none"),
        *FAST,
    )
    assert code == 2
    assert "baseline record" in _one_line(err)


def test_until_decided_end_to_end_stores_the_verdicts(
    run_cli, conv_model: Path, baseline_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(
        "bench",
        str(conv_model),
        "--until-decided",
        "--baseline",
        str(baseline_file),
        "--max-seconds",
        "2",
        "--looks",
        "2",
        "--out",
        str(out),
        "--warmup",
        "0",
        "--power",
        "none",
        "--no-history",
    )
    r = load_result(out)
    gate = r.extra["gate"]
    assert code == gate["exit_code"] and code in (0, 1), err
    assert gate["mode"] == "until-decided" and gate["baseline"] == str(baseline_file)
    assert gate["plan"]["looks"] == 2 and gate["plan"]["spending"] == "obrien-fleming"
    assert {v["metric"] for v in gate["verdicts"]} >= {"latency.p50_ms", "throughput.fps"}
    assert r.stopped_by in ("decided", "max-seconds")
    assert 1 <= len(gate["looks"]) <= 2
    # printed as gate prints it
    assert gate["text"] in stdout and gate["summary"] in stdout
    assert r.config.stop["until_decided"] is True and r.config.stop["max_seconds"] == 2.0


def test_targets_file_sets_tolerances_and_its_targets_are_checked(
    run_cli, conv_model: Path, baseline_file: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "t.toml"
    targets.write_text(
        '[targets]\n"latency.p99_ms" = "< 0.000001"\n[tolerance]\n"latency.p50_ms" = "40%"\n'
    )
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "bench", str(conv_model), "--until-decided", "--baseline", str(baseline_file),
        "--targets", str(targets), "--max-seconds", "1", "--out", str(out), *FAST,
    )  # fmt: skip
    assert code == 1, err
    verdicts = load_result(out).extra["gate"]["verdicts"]
    first = verdicts[0]
    assert (first["kind"], first["metric"], first["status"]) == ("target", "latency.p99_ms", "fail")
    p50 = next(v for v in verdicts if v["kind"] == "baseline" and v["metric"] == "latency.p50_ms")
    assert p50["tolerance_pct"] == pytest.approx(40.0)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_until_decided_on_the_tensorrt_double(trt_env, tmp_path: Path, run_cli) -> None:
    """Wiring only: the double's GPU time is simulated (constant), the host clock is real."""
    from trt_double import models

    trt_env.testing.config.inference_ms = 3.5
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    base = tmp_path / "base.json"
    common = ("--backend", "tensorrt", "--engine-out", str(engine), *FAST)
    code, _, err = run_cli(
        "bench", str(onnx_path), "--iterations", "400", "--out", str(base), *common
    )
    assert code == 0, err
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "bench",
        str(onnx_path),
        "--until-decided",
        "--baseline",
        str(base),
        "--max-seconds",
        "1",
        "--out",
        str(out),
        *common,
    )
    r = load_result(out)
    gate = r.extra["gate"]
    assert code == gate["exit_code"], err
    assert r.config.stop["until_decided"] is True and r.config.stop["looks"] == 1
    verdicts = {v["metric"]: v for v in gate["verdicts"]}
    # the simulated GPU time is the same 3.5 ms in both runs: shown to be unchanged
    assert verdicts["gpu_compute.p50_ms"]["status"] == "unchanged"
    assert verdicts["gpu_compute.p50_ms"]["ci"] == pytest.approx([1.0, 1.0])


def _until_decided_cli(run_cli, model: Path, baseline: Path, out: Path, *extra: str):
    return run_cli(
        "bench",
        str(model),
        "--until-decided",
        "--baseline",
        str(baseline),
        "--max-seconds",
        "30",
        "--out",
        str(out),
        *extra,
        *FAST,
    )


def test_a_baseline_of_other_input_shapes_is_exit_3_before_measuring(
    run_cli, dynamic_conv_model: Path, tmp_path: Path
) -> None:
    # found by a new user: a batch-1 run was gated against a batch-2 baseline ("4 improved")
    base = tmp_path / "b2.json"
    code, _, err = run_cli(
        "bench",
        str(dynamic_conv_model),
        "--shape",
        "x:2x3x16x16",
        "--iterations",
        "400",
        "--out",
        str(base),
        *FAST,
    )
    assert code == 0, err
    out = tmp_path / "r.json"
    code, _, err = _until_decided_cli(
        run_cli, dynamic_conv_model, base, out, "--shape", "x:1x3x16x16", "--allow-env-mismatch"
    )
    assert code == 3  # a different workload: never overridable
    line = _one_line(err)
    assert "not comparable" in line and "1x3x16x16" in line and "2x3x16x16" in line
    assert not out.exists()


def test_a_baseline_of_other_threads_is_exit_3_unless_allowed(
    run_cli, conv_model: Path, baseline_file: Path, tmp_path: Path
) -> None:
    d = json.loads(baseline_file.read_text())
    assert d["config"]["runtime"]["intra_op_threads"] == 0  # ONNX Runtime's default
    d["config"]["runtime"]["intra_op_threads"] = 3
    other = tmp_path / "t2.json"
    other.write_text(json.dumps(d))
    out = tmp_path / "r.json"
    code, _, err = _until_decided_cli(run_cli, conv_model, other, out)
    assert code == 3 and "thread" in _one_line(err) and not out.exists()
    code, _, err = _until_decided_cli(run_cli, conv_model, other, out, "--allow-env-mismatch")
    assert code in (0, 1), err
    gate = json.loads(out.read_text())["extra"]["gate"]
    assert any("thread" in w for w in gate["env_warnings"]), gate["env_warnings"]
