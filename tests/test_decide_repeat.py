"""Build reproducibility statistics on samples of known shape, and repeat_builds' bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orinbench.backends.tensorrt.sidecar import FORMAT, FORMAT_VERSION, read_sidecar, write_sidecar
from orinbench.decide.repeat import (
    MODE_NONE,
    MODE_SHARED,
    BuildRequest,
    RepeatSample,
    analyze_repeats,
    check_repeat,
    repeat_builds,
    repeat_runs,
)
from orinbench.errors import UsageError
from orinbench.results.schema import Environment, ModelRef, Result, RunConfig


def _normal(mean: float, sd: float, n: int, seed: int) -> tuple[float, ...]:
    return tuple(np.random.default_rng(seed).normal(mean, sd, n).tolist())


def _runs(means: list[float], *, n: int = 400, sd: float = 0.1, mode: str = "run") -> list:
    return [
        RepeatSample(index=i, mode=mode, artifact=f"b{i}", samples=_normal(m, sd, n, i))
        for i, m in enumerate(means)
    ]


def test_one_build_10_percent_slower_is_flagged_and_the_others_not() -> None:
    report = analyze_repeats(_runs([10.0, 10.0, 11.0, 10.0]))
    assert [b.flagged for b in report.builds] == [False, False, True, False]
    odd = report.builds[2]
    assert odd.delta_pct == pytest.approx(10.0, abs=0.5)
    assert odd.p_value is not None and odd.p_value < 1e-10
    assert report.spread["run"].median_pct == pytest.approx(10.0, abs=0.6)
    assert report.fastest_build.median_ms < 10.05
    text = " ".join(report.sentences())
    assert "build 2 (run) is 10." in text and "slower than its siblings" in text


def test_differences_below_the_one_percent_noise_floor_are_not_flagged() -> None:
    # 0.5 % apart with 20000 samples each: the CIs do not overlap, the difference is
    # significant, but it is below the noise floor of repeated runs
    report = analyze_repeats(_runs([10.0, 10.05, 10.0], n=20000))
    assert not any(b.flagged for b in report.builds)
    assert report.builds[1].noise_pct == pytest.approx(1.0, rel=0.01)
    assert report.builds[1].p_value is not None and report.builds[1].p_value < 0.01


def test_noise_from_wide_intervals_hides_a_difference_between_noisy_runs() -> None:
    # 3 % apart but each run is very noisy and short: within the run-to-run noise
    report = analyze_repeats(_runs([10.0, 10.3, 10.0], n=40, sd=2.0))
    assert not any(b.flagged for b in report.builds)
    assert report.builds[1].noise_pct is not None and report.builds[1].noise_pct > 3.0


def test_two_builds_that_differ_are_both_flagged() -> None:
    report = analyze_repeats(_runs([10.0, 12.0]))
    assert [b.flagged for b in report.builds] == [True, True]
    assert report.fastest == 0


def test_too_few_samples_are_never_flagged() -> None:
    report = analyze_repeats(_runs([10.0, 20.0, 10.0], n=5))
    assert not any(b.flagged for b in report.builds)
    assert all(b.median_ci is None for b in report.builds)


def test_spread_per_mode_and_over_all() -> None:
    shared = _runs([10.0, 10.1], mode=MODE_SHARED)
    none = [
        RepeatSample(
            index=2 + r.index,
            mode=MODE_NONE,
            artifact="x",
            samples=_normal(m, 0.1, 400, 9 + r.index),
        )
        for r, m in zip(shared, [10.0, 11.0], strict=True)
    ]
    report = analyze_repeats(shared + none)
    assert set(report.spread) == {MODE_SHARED, MODE_NONE, "all"}
    assert report.spread[MODE_SHARED].median_pct == pytest.approx(1.0, abs=0.4)
    assert report.spread[MODE_NONE].median_pct == pytest.approx(10.0, abs=0.6)
    assert report.spread["all"].count == 4
    assert report.spread["all"].p99_max_ms > report.spread["all"].p99_min_ms
    json.dumps(report.to_dict(), allow_nan=False)


def test_repeat_must_be_positive() -> None:
    for bad in (0, -1):
        with pytest.raises(UsageError, match="--repeat must be >= 1"):
            check_repeat(bad)
    assert check_repeat(3) == 3


def _result(samples: tuple[float, ...]) -> Result:
    return Result(
        tool_version="0",
        created_utc="",
        samples={"latency": samples},
        stats={},
        throughput={},
        environment=Environment("h", "c", "o", "p", "tensorrt", "10.3.0"),
        model=ModelRef("m.engine", "0", (), ()),
        config=RunConfig(backend="tensorrt"),
    )


def test_repeat_builds_keeps_the_fastest_engine_and_says_so_in_its_sidecar(tmp_path: Path) -> None:
    requests: list[BuildRequest] = []
    # three builds within 0.4 % of each other, and no-cache build 1 (index 3) 10 % faster
    speed = {0: 10.0, 1: 10.02, 2: 10.04, 3: 9.0}

    def build(req: BuildRequest) -> Path:
        requests.append(req)
        req.engine_path.write_bytes(f"engine {req.index}".encode())
        req.engine_path.with_name(req.engine_path.name + ".log").write_text("log")
        write_sidecar(
            req.engine_path,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "engine": {"file": req.engine_path.name, "size_bytes": 8},
                "build": {"log": req.engine_path.name + ".log"},
            },
        )
        if req.timing_cache is not None:
            req.timing_cache.write_text("tactics")
        return req.engine_path

    def bench(path: Path) -> Result:
        k = int(path.read_text().split()[1])
        return _result(_normal(speed[k], 0.05, 300, k))

    keep = tmp_path / "out" / "bev.fp16.engine"
    report, best = repeat_builds(n=2, build=build, bench=bench, keep=keep)
    assert [(r.mode, r.timing_cache is not None) for r in requests] == [
        (MODE_SHARED, True),
        (MODE_SHARED, True),
        (MODE_NONE, False),
        (MODE_NONE, False),
    ]
    assert requests[0].timing_cache == requests[1].timing_cache
    # benchmarked round-robin: shared 0, none 0, shared 1, none 1
    assert [b.artifact.rsplit("/", 1)[-1] for b in report.builds] == [
        "build-0-shared-cache.engine",
        "build-2-no-cache.engine",
        "build-1-shared-cache.engine",
        "build-3-no-cache.engine",
    ]
    assert keep.read_text() == "engine 3"
    assert report.fastest_build.mode == MODE_NONE and report.kept == str(keep)
    assert float(np.median(best.samples["latency"])) == pytest.approx(9.0, abs=0.05)
    assert [b.index for b in report.builds] == [0, 2, 1, 3]
    sc = read_sidecar(keep)
    assert sc is not None and sc["repeat"]["kept"] == "fastest of 4 builds"
    assert sc["engine"]["file"] == keep.name and sc["build"]["log"] == keep.name + ".log"
    assert sc["repeat"]["flagged"] == [3] and sc["repeat"]["index"] == 3
    assert sorted(p.name for p in keep.parent.iterdir()) == [
        "bev.fp16.engine",
        "bev.fp16.engine.json",
        "bev.fp16.engine.log",
    ]


def test_repeat_builds_refuses_zero_before_building(tmp_path: Path) -> None:
    called: list[int] = []
    with pytest.raises(UsageError):
        repeat_builds(
            n=0,
            build=lambda r: called.append(1) or r.engine_path,  # type: ignore[func-returns-value]
            bench=lambda p: _result((1.0,)),
            keep=tmp_path / "e.engine",
        )
    assert called == [] and list(tmp_path.iterdir()) == []


def test_repeat_runs_without_builds() -> None:
    k = iter(range(3))
    report, results = repeat_runs(
        lambda: _result(_normal(5.0, 0.05, 200, next(k))), n=3, artifact="m.onnx"
    )
    assert len(results) == 3 and set(report.spread) == {"run"}
    assert report.spread["run"].median_pct < 1.0 and not report.flagged
