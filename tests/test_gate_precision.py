"""A baseline must know its gated percentiles to within half their tolerance (gate/precision.py).

``baseline record`` refuses a noisier one (exit 2, nothing written) unless --allow-imprecise;
``gate`` and ``bench --until-decided`` warn about one recorded before the check.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _gate_results import make_result

from orinbench.bench.stats import ci_relative_halfwidth
from orinbench.errors import ExitCode, ImpreciseBaselineError
from orinbench.gate import gate, record_baseline
from orinbench.gate.precision import (
    PRECISION_SHARE,
    BaselinePrecision,
    baseline_precision,
    imprecise,
    precision_warnings,
)
from orinbench.gate.sequential import SequentialGate
from orinbench.results.io import save_result


def _lognormal(seed: int, n: int, cv: float, mean: float = 20.0) -> np.ndarray:
    sigma = math.sqrt(math.log1p(cv * cv))
    return np.random.default_rng(seed).lognormal(math.log(mean) - sigma**2 / 2, sigma, n)


SHORT = make_result(_lognormal(4, 500, 0.10), backend="onnxruntime", device=None)  # one 10 s run
MID = make_result(_lognormal(2, 1200, 0.10), backend="onnxruntime", device=None)  # 24 s
LONG = make_result(_lognormal(2, 3000, 0.10), backend="onnxruntime", device=None)  # 60 s


def test_the_rule_is_the_95_percent_half_width_against_half_the_tolerance() -> None:
    entries = {e.metric: e for e in baseline_precision(MID)}
    # gate's default metrics of an ONNX Runtime result: the three latency percentiles
    assert sorted(entries) == ["latency.p50_ms", "latency.p95_ms", "latency.p99_ms"]
    raw = np.asarray(MID.samples["latency"])
    p99 = entries["latency.p99_ms"]
    assert p99.samples == 1200 and p99.tolerance == 0.05 and p99.min_samples == 1000
    assert p99.halfwidth == ci_relative_halfwidth(raw, 99, confidence=0.95)
    assert p99.halfwidth is not None and 0.025 < p99.halfwidth < 0.05
    assert PRECISION_SHARE == 0.5 and p99.limit == pytest.approx(0.025)
    assert p99.stop_rule() == "p99:2%"
    assert not p99.precise
    assert "is known only to +-3.0% (95%, 1200 samples)" in p99.describe()
    assert entries["latency.p50_ms"].precise and entries["latency.p95_ms"].precise
    assert [e.metric for e in imprecise(entries.values())] == ["latency.p99_ms"]
    assert imprecise(baseline_precision(LONG)) == []


def test_the_limit_is_inclusive_and_a_missing_interval_is_never_precise() -> None:
    limit = 0.5 * 0.05
    assert BaselinePrecision("latency.p99_ms", 99, 1000, limit, 0.05).precise
    wider = math.nextafter(limit, 1.0)
    assert not BaselinePrecision("latency.p99_ms", 99, 1000, wider, 0.05).precise
    assert not BaselinePrecision("latency.p99_ms", 99, 1000, None, 0.05).precise
    # a narrow interval from too few samples is not trusted: 999 < 1000 for a P99
    assert not BaselinePrecision("latency.p99_ms", 99, 999, 0.001, 0.05).precise
    assert BaselinePrecision("latency.p95_ms", 95, 200, 0.001, 0.05).precise
    assert not BaselinePrecision("latency.p95_ms", 95, 199, 0.001, 0.05).precise
    assert BaselinePrecision("latency.p99_9_ms", 99.9, 0, None, 0.10).stop_rule() == "p99.9:4%"


def test_tolerances_and_metrics_change_what_is_checked() -> None:
    # a 10 % tolerance on P99 allows +-5 %: the 24 s baseline is then precise enough
    assert imprecise(baseline_precision(MID, tolerances={"latency.p99_ms": 0.10})) == []
    # a 0.5 % tolerance on P50 (+-0.25 %) is too tight for 3000 samples at 10 % CV
    tight = imprecise(baseline_precision(LONG, tolerances={"latency.p50_ms": 0.005}))
    assert [e.metric for e in tight] == ["latency.p50_ms"] and tight[0].limit == 0.0025
    # only the metrics asked about; means and fps are not percentile metrics
    only = baseline_precision(SHORT, metrics=["latency.p95_ms", "latency.mean_ms"])
    assert [e.metric for e in only] == ["latency.p95_ms"]
    assert baseline_precision(SHORT, metrics=["throughput.fps"]) == []
    # a [tolerance] metric that names no raw series (nor a percentile) is not checked, and
    # does not stop the check of the others
    odd = baseline_precision(MID, tolerances={"soak.drift.p99_ms": 0.05, "energy.mj": 0.1})
    assert [e.metric for e in odd] == ["latency.p50_ms", "latency.p95_ms", "latency.p99_ms"]


def test_missing_samples_and_too_few_samples_are_named() -> None:
    bare = make_result(_lognormal(3, 3000, 0.03), keep_samples=False, backend="onnxruntime")
    (p99,) = [e for e in baseline_precision(bare) if e.metric == "latency.p99_ms"]
    assert p99.samples == 0 and p99.halfwidth is None
    assert "has no raw samples" in p99.describe()
    # samples that are all NaN count as none
    nan = LONG.with_(samples={"latency": (math.nan,) * 3000})
    (p99,) = [e for e in baseline_precision(nan) if e.metric == "latency.p99_ms"]
    assert p99.samples == 0 and not p99.precise
    # one 10 s run of 500: its P99 interval exists (368 samples) but is not trusted yet
    (p99,) = [e for e in baseline_precision(SHORT) if e.metric == "latency.p99_ms"]
    assert p99.samples == 500 and p99.halfwidth is not None and not p99.precise
    assert "rests on 500 samples, fewer than the 1000 that put 10 beyond it" in p99.describe()
    few = make_result(_lognormal(4, 300, 0.03), backend="onnxruntime")
    # ... and with enough samples but no interval at all (a P99.9 from 10000 samples has one)
    (p99,) = [e for e in baseline_precision(few) if e.metric == "latency.p99_ms"]
    assert p99.halfwidth is None and not p99.precise
    no_ci = BaselinePrecision("latency.p99_ms", 99, 1000, None, 0.05)
    assert "has no 95% interval (1000 samples)" in no_ci.describe()


def test_record_refuses_an_imprecise_baseline_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImpreciseBaselineError) as info:
        record_baseline(MID, to_dir=tmp_path / "bl")
    msg = str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    assert "latency.p99_ms is known only to +-3.0% (95%, 1200 samples)" in msg
    assert "needs +-2.5% or better" in msg and "--allow-imprecise" in msg
    assert "--until-ci p99:2% --max-seconds 300" in msg
    assert "latency.p50_ms" not in msg  # only what fails is named
    assert not (tmp_path / "bl").exists()
    assert record_baseline(MID, to_dir=tmp_path / "bl", allow_imprecise=True).is_file()
    # a tolerance that the baseline can support
    path = record_baseline(MID, to_dir=tmp_path / "b2", tolerances={"latency.p99_ms": 0.10})
    assert path.is_file()
    assert record_baseline(LONG, to_dir=tmp_path / "b3").is_file()
    with pytest.raises(ImpreciseBaselineError, match="rests on 500 samples"):
        record_baseline(SHORT, to_dir=tmp_path / "b4", tolerances={"latency.p99_ms": 0.50})


def test_cli_record_refuses_in_one_line_and_takes_the_targets_tolerances(
    run_cli, tmp_path: Path
) -> None:
    src = save_result(MID, tmp_path / "mid.json")
    code, out, err = run_cli("baseline", "record", str(src), "--to", str(tmp_path / "bl"))
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "too imprecise to be a baseline" in lines[0], err
    assert not (tmp_path / "bl").exists()
    targets = tmp_path / "t.toml"
    targets.write_text('[tolerance]\n"latency.p99_ms" = "10%"\n')
    code, out, err = run_cli(
        "baseline", "record", str(src), "--to", str(tmp_path / "bl"), "--targets", str(targets)
    )
    assert code == 0 and "baseline recorded:" in out, err
    code, out, err = run_cli(
        "baseline", "record", str(src), "--to", str(tmp_path / "b2"), "--allow-imprecise"
    )
    assert code == 0 and "baseline recorded:" in out, err


def test_gate_and_until_decided_warn_about_an_imprecise_baseline() -> None:
    result = make_result(_lognormal(5, 500, 0.10), backend="onnxruntime", device=None)
    warned = gate(result, baseline=MID).warnings
    assert ("baseline", "short-baseline") in [(w.source, w.code) for w in warned]
    (w,) = [w for w in warned if w.code == "short-baseline"]
    assert "latency.p99_ms" in w.message and "fail this gate by chance" in w.message
    assert "--until-ci p99:2%" in w.message
    assert not [w for w in gate(result, baseline=LONG).warnings if w.code == "short-baseline"]
    # a wider P99 tolerance lifts it
    quiet = gate(result, baseline=MID, tolerances={"latency.p99_ms": 0.10}).warnings
    assert not [w for w in quiet if w.code == "short-baseline"]
    # the sequential gate applies the same rule to the metrics it tests
    assert [w.message for w in SequentialGate(MID).short_baseline()] == [
        w.message for w in precision_warnings(MID)
    ]
    assert len(SequentialGate(MID).short_baseline()) == 1
    assert SequentialGate(LONG).short_baseline() == []
