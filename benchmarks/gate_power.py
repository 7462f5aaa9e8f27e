"""How often the gate raises a false alarm, and how often it catches a 10 % slowdown.

Simulated runs, judged by orinbench's own decision code (``orinbench.gate.compare.compare`` for
the fixed-length gate, ``orinbench.gate.sequential.SequentialGate`` for ``--until-decided``);
only the samples are simulated.

The model: per-iteration latencies are i.i.d. lognormal with the given coefficient of variation
(``sigma^2 = ln(1 + CV^2)``), right-skewed as latencies are. The default 10 s run yields ``n``
iterations, so one iteration costs ``10 s / n`` on average (20 ms at n = 500, 5 ms at n = 2000),
and the ``--until-decided`` budget of 60 s holds about ``6 n`` iterations, looked at after each
10 s block (6 planned looks). The baseline is recorded the way ``orinbench baseline record``
asks for when it refuses a noisier one: ``bench --until-ci p99:2% --max-seconds 300`` (the
P99's 95 % interval checked every 50 iterations from 1000 samples on, as the harness does), and
it must then pass ``baseline record``'s precision check (``orinbench.gate.precision``); a trial
whose baseline would be refused is counted and reported. ``--baseline-seconds S`` instead takes a
fixed-length baseline of ``S`` seconds, recorded with ``--allow-imprecise`` when it fails that
check (to show what the check prevents). Each iteration's time is its latency, so a slower
result fits fewer iterations into each block and its fps is ``iterations / summed latency``, as
the harness counts it. Gated metrics: gate's defaults for an ONNX Runtime result,
``latency.p50_ms``, ``latency.p95_ms``, ``latency.p99_ms`` and ``throughput.fps``, 5 % tolerance
each.

Scenarios:

* ``A/A``: the result drawn from the same law as the baseline;
* ``all +10%``: every sample of the result 10 % slower;
* ``tail +10%``: only the tail slower: samples above the law's P96 are stretched away from it so
  that the P99 is 10 % higher, while P50 and P95 stay where they were (mean +0.5 % at CV 10 %).
  Stretching thins the tail (its density near P99 drops by the stretch factor, 2.8 at CV 10 %),
  so the result's own P99 becomes harder to pin down: the hard case, decided on first;
* ``tail shift``: the other reading of a tail-only slowdown: samples above the law's P96 move up
  by a constant, 10 % of the law's P99 (a slow path that got slower by a fixed amount); the
  tail keeps its density, so its P99 is as well determined as in A/A.

Reported per setting and scenario, over ``--trials`` trials: the share of trials whose exit code
is not 0 (A/A: false alarms), of trials with ``latency.p99_ms`` ``regressed`` (detections), and
for ``--until-decided`` the iterations and seconds at which the run stopped.

    python benchmarks/gate_power.py [--trials 500] [--quick] [--jobs 2] [--baseline-seconds 10]

Results: ``benchmarks/results/gate_power-cpu2.txt`` (baselines as ``baseline record`` asks) and
``gate_power-baseline10-cpu2.txt`` (``--baseline-seconds 10``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from orinbench.bench.stats import (
    ci_relative_halfwidth,
    min_tail_samples,
    normal_quantile,
    summarize,
)
from orinbench.gate.compare import compare
from orinbench.gate.precision import baseline_precision, imprecise
from orinbench.gate.sequential import SequentialGate, SpendingPlan
from orinbench.gate.verdict import GateReport
from orinbench.results.schema import HOST_LATENCY, Environment, ModelRef, Result, RunConfig

RUN_S = 10.0  # the default fixed-length run
BUDGET_S = 60.0  # the --until-decided budget
LOOKS = 6  # one look per 10 s block
SLOWDOWN = 1.10
TAIL_FROM = 0.96  # the tail-only slowdown stretches samples above this quantile
SCENARIOS = ("A/A", "all +10%", "tail +10%", "tail shift")
CVS = (0.03, 0.05, 0.10)
NS = (500, 2000)
P99 = "latency.p99_ms"
BASELINE_CI = 0.02  # bench --until-ci p99:2%, the rule baseline record's refusal suggests
BASELINE_MAX_S = 300.0
CI_CHECK_EVERY = 50  # the harness checks the --until-ci rule every 50 iterations
CI_MIN_ITERATIONS = 100


@dataclass(frozen=True)
class Setting:
    cv: float
    n: int
    scenario: str
    trials: int
    seed: int
    baseline_s: float | None  # None: recorded with --until-ci p99:2% (the default)
    spending: str


@dataclass(frozen=True)
class Outcome:
    fixed_fail: float  # share of trials with exit != 0
    fixed_p99_regressed: float
    seq_fail: float
    seq_p99_regressed: float
    seq_decided: float  # share of trials where every metric was decided within the budget
    seq_iters_median: float
    seq_iters_p95: float
    seq_seconds_median: float
    seq_seconds_p95: float
    seq_statuses: dict[str, int]
    baseline_s_median: float
    baseline_s_p95: float
    baseline_refused: float  # share of trials whose baseline 'baseline record' would refuse


def _lognormal(rng: np.random.Generator, cv: float, mean: float, size: int) -> np.ndarray:
    sigma = math.sqrt(math.log1p(cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    return rng.lognormal(mu, sigma, size)


def _tail_change(cv: float, mean: float) -> tuple[float, float, float]:
    """(t, factor, shift): x > t becomes t + (x - t) * factor (stretch) or x + shift (shift),
    either way the law's P99 grows 10 %."""
    sigma = math.sqrt(math.log1p(cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    q99 = math.exp(mu + sigma * normal_quantile(0.99))
    t = math.exp(mu + sigma * normal_quantile(TAIL_FROM))
    return t, (SLOWDOWN * q99 - t) / (q99 - t), (SLOWDOWN - 1.0) * q99


def _record_baseline(rng: np.random.Generator, s: Setting, mean: float) -> np.ndarray:
    """The baseline's samples: a fixed-length run, or ``bench --until-ci p99:2%
    --max-seconds 300`` with the harness's cadence (checked every 50 iterations from 100)."""
    if s.baseline_s is not None:
        return _lognormal(rng, s.cv, mean, round(s.n * s.baseline_s / RUN_S))
    x = _lognormal(rng, s.cv, mean, round(s.n * BASELINE_MAX_S / RUN_S * 1.1))
    ends = np.cumsum(x) / 1e3
    cap = int(np.searchsorted(ends, BASELINE_MAX_S)) + 1
    first = max(CI_MIN_ITERATIONS, min_tail_samples(0.99))
    for n in range(first, cap + 1, CI_CHECK_EVERY):
        hw = ci_relative_halfwidth(x[:n], 99)
        if hw is not None and hw <= BASELINE_CI:
            return x[:n]
    return x[:cap]


def _result(samples: np.ndarray) -> Result:
    """A minimal result of these latency samples (ms), as the harness would assemble it."""
    return Result(
        tool_version="sim",
        created_utc="",
        environment=Environment(
            host="sim", cpu="", os="", python="", backend="onnxruntime", backend_version=""
        ),
        model=ModelRef(path="", sha256="", inputs=(), outputs=(), name="sim"),
        config=RunConfig(backend="onnxruntime"),
        samples={HOST_LATENCY: tuple(samples.tolist())},
        stats={HOST_LATENCY: summarize(samples).to_dict()},
        throughput={"fps": samples.size / (samples.sum() / 1e3)},
    )


def _simulate(s: Setting) -> Outcome:
    rng = np.random.default_rng(s.seed)
    mean = RUN_S * 1e3 / s.n  # ms per iteration
    t, factor, shift = _tail_change(s.cv, mean)
    plan = SpendingPlan(looks=LOOKS, spending=s.spending)  # type: ignore[arg-type]
    fixed_fail = fixed_reg = seq_fail = seq_reg = seq_dec = 0
    iters: list[int] = []
    secs: list[float] = []
    statuses: dict[str, int] = {}
    base_secs: list[float] = []
    refused = 0
    for _ in range(s.trials):
        base = _record_baseline(rng, s, mean)
        base_secs.append(float(base.sum() / 1e3))
        # enough draws for 60 s even when 10 % slower
        res = _lognormal(rng, s.cv, mean, int(s.n * BUDGET_S / RUN_S * 1.25))
        if s.scenario == "all +10%":
            res = res * SLOWDOWN
        elif s.scenario == "tail +10%":
            res = np.where(res > t, t + (res - t) * factor, res)
        elif s.scenario == "tail shift":
            res = np.where(res > t, res + shift, res)
        ends = np.cumsum(res) / 1e3  # s at the end of each iteration
        baseline = _result(base)
        refused += bool(imprecise(baseline_precision(baseline)))

        # the fixed-length gate: one default run, then compare() as `orinbench gate` does
        n_fixed = int(np.searchsorted(ends, RUN_S)) + 1
        fixed = compare(_result(res[:n_fixed]), baseline)
        fixed_fail += GateReport(verdicts=tuple(fixed)).exit_code != 0
        fixed_reg += any(v.metric == P99 and v.status == "regressed" for v in fixed)

        # --until-decided: looks after each 10 s block, the harness's rule
        gate = SequentialGate(baseline, plan=plan)
        stop_n = 0
        reason = None
        for k in range(1, LOOKS + 1):
            stop_n = int(np.searchsorted(ends, k * BUDGET_S / LOOKS)) + 1
            x = res[:stop_n]
            values = {
                "latency.p50_ms": float(np.percentile(x, 50)),
                "latency.p95_ms": float(np.percentile(x, 95)),
                "latency.p99_ms": float(np.percentile(x, 99)),
                "throughput.fps": stop_n / (x.sum() / 1e3),
            }
            reason = gate.look_samples(k, series={HOST_LATENCY: x}, values=values)
            if reason is not None:
                break
        # a run that ends undecided is judged on all its samples by the fixed rule
        final = gate.final_verdicts(
            _result(res[:stop_n]) if reason is None else None, budget_ended=reason is None
        )
        seq_fail += GateReport(verdicts=tuple(final)).exit_code != 0
        seq_reg += any(v.metric == P99 and v.status == "regressed" for v in final)
        seq_dec += reason is not None
        for v in final:
            key = f"{v.metric.split('.')[-1]}:{v.status}"
            statuses[key] = statuses.get(key, 0) + 1
        iters.append(stop_n)
        secs.append(float(ends[stop_n - 1]))
    n = s.trials
    return Outcome(
        fixed_fail=fixed_fail / n,
        fixed_p99_regressed=fixed_reg / n,
        seq_fail=seq_fail / n,
        seq_p99_regressed=seq_reg / n,
        seq_decided=seq_dec / n,
        seq_iters_median=float(np.median(iters)),
        seq_iters_p95=float(np.percentile(iters, 95)),
        seq_seconds_median=float(np.median(secs)),
        seq_seconds_p95=float(np.percentile(secs, 95)),
        seq_statuses=statuses,
        baseline_s_median=float(np.median(base_secs)),
        baseline_s_p95=float(np.percentile(base_secs, 95)),
        baseline_refused=refused / n,
    )


def _pct(x: float) -> str:
    return f"{x * 100:5.1f}%"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="40 trials, CV 10 %% and n 500 only")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument(
        "--baseline-seconds",
        type=float,
        default=None,
        help="a fixed-length baseline of this many seconds, recorded with --allow-imprecise "
        "(default: recorded with --until-ci p99:2%% --max-seconds 300, as baseline record asks)",
    )
    ap.add_argument(
        "--spending", choices=("obrien-fleming", "bonferroni"), default="obrien-fleming"
    )
    args = ap.parse_args(argv)
    trials = min(args.trials, 40) if args.quick else args.trials
    cvs = (0.10,) if args.quick else CVS
    ns = (500,) if args.quick else NS
    settings = [
        Setting(
            cv,
            n,
            sc,
            trials,
            args.seed + 1000 * i + 10 * j + m,
            args.baseline_seconds,
            args.spending,
        )
        for i, cv in enumerate(cvs)
        for j, n in enumerate(ns)
        for m, sc in enumerate(SCENARIOS)
    ]
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(_simulate, settings))
    else:
        outcomes = [_simulate(s) for s in settings]
    took = time.perf_counter() - t0

    plan = SpendingPlan(looks=LOOKS, spending=args.spending)  # type: ignore[arg-type]
    if args.baseline_seconds is None:
        how = (
            f"baseline recorded with --until-ci p99:{BASELINE_CI:.0%} --max-seconds "
            f"{BASELINE_MAX_S:g} (as 'baseline record' asks)"
        )
    else:
        how = (
            f"baseline a fixed {args.baseline_seconds:g} s run (n x "
            f"{args.baseline_seconds / RUN_S:g} samples, recorded with --allow-imprecise)"
        )
    print(
        f"gate power: {trials} trials per row, lognormal latencies, tolerance 5 %, {how}, "
        f"fixed run {RUN_S:g} s, --until-decided budget {BUDGET_S:g} s in {LOOKS} looks, "
        f"{args.spending} spending (one-sided a_k = "
        + ", ".join(f"{a:.3g}" for a in plan.boundaries())
        + ")"
    )
    print(
        "fail = exit != 0; p99 reg = latency.p99_ms decided 'regressed'; "
        "decided = every metric decided before the budget ended; baseline s = its length; "
        "refused = baselines 'baseline record' would refuse without --allow-imprecise"
    )
    print()
    head = (
        f"{'CV':>4} {'n':>5} {'scenario':<10} | {'fixed: fail':>11} {'p99 reg':>8} | "
        f"{'until-decided: fail':>19} {'p99 reg':>8} {'decided':>8} "
        f"{'iters med/p95':>14} {'seconds med/p95':>16} | {'baseline s':>11} {'refused':>7}"
    )
    print(head)
    print("-" * len(head))
    failed_targets: list[str] = []
    for s, o in zip(settings, outcomes, strict=True):
        print(
            f"{s.cv * 100:3.0f}% {s.n:5d} {s.scenario:<10} | {_pct(o.fixed_fail):>11} "
            f"{_pct(o.fixed_p99_regressed):>8} | {_pct(o.seq_fail):>19} "
            f"{_pct(o.seq_p99_regressed):>8} {_pct(o.seq_decided):>8} "
            f"{o.seq_iters_median:>6.0f}/{o.seq_iters_p95:<7.0f} "
            f"{o.seq_seconds_median:>7.1f}/{o.seq_seconds_p95:<8.1f} | "
            f"{o.baseline_s_median:>5.0f}/{o.baseline_s_p95:<5.0f} {_pct(o.baseline_refused):>7}"
        )
        if s.scenario == "A/A":
            for mode, rate in (("fixed", o.fixed_fail), ("until-decided", o.seq_fail)):
                if rate > 0.01:
                    failed_targets.append(
                        f"A/A exit != 0 at CV {s.cv:.0%}, n {s.n}, {mode}: {_pct(rate).strip()} "
                        "(target <= 1 %)"
                    )
        if s.scenario.startswith("tail") and s.cv == 0.10 and o.seq_p99_regressed < 0.95:
            failed_targets.append(
                f"{s.scenario} P99 regressed at CV 10 %, n {s.n}, until-decided: "
                f"{_pct(o.seq_p99_regressed).strip()} (target >= 95 %)"
            )
    print()
    print("until-decided final verdicts (metric:status count), per row:")
    for s, o in zip(settings, outcomes, strict=True):
        body = ", ".join(f"{k} {v}" for k, v in sorted(o.seq_statuses.items()))
        print(f"  CV {s.cv * 100:.0f}% n {s.n} {s.scenario}: {body}")
    print()
    if failed_targets:
        print("targets NOT met:")
        for line in failed_targets:
            print(f"  {line}")
    else:
        print("targets met: A/A exit != 0 <= 1 %; tail-only P99 regressed >= 95 % at CV 10 %")
    print(f"\n{len(settings) * trials} trials in {took:.0f} s on {args.jobs} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
