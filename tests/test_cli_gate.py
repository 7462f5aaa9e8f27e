"""`orinbench gate` and `orinbench baseline record`, run through the real CLI entry point."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from _gate_results import JETSON, latency_samples, make_result

from orinbench.results.io import save_result

RunCli = Callable[..., tuple[int, str, str]]


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("orinbench: error: ")
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Baseline and candidate results written as JSON files."""
    out = {
        "baseline": make_result(seed=1),
        "noise": make_result(seed=2),
        "slow": make_result(latency_samples(2000, seed=2) * 1.10),
        "short": make_result(n=200, seed=3),
        "other_env": make_result(seed=2, device={**JETSON, "jetpack": "5.1.2"}),
    }
    return {k: save_result(v, tmp_path / f"{k}.json") for k, v in out.items()}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_noise_only_passes(run_cli: RunCli, files: dict[str, Path]) -> None:
    code, out, err = run_cli("gate", str(files["noise"]), "--baseline", str(files["baseline"]))
    assert code == 0, out + err
    assert "gate PASS" in out and "unchanged" in out
    assert "latency.p99_ms" in out


def test_ten_percent_slower_exits_1_with_regressed(run_cli: RunCli, files: dict[str, Path]) -> None:
    code, out, _ = run_cli("gate", str(files["slow"]), "--baseline", str(files["baseline"]))
    assert code == 1
    assert "regressed" in out and "gate FAIL" in out


def test_targets_pass_and_fail(run_cli: RunCli, files: dict[str, Path], tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.toml", '"latency.p99_ms" = "< 80"\n"throughput.fps" = "> 12"\n')
    assert run_cli("gate", str(files["noise"]), "--targets", str(ok))[0] == 0
    bad = write(tmp_path, "bad.toml", '[targets]\n"latency.p99_ms" = "< 10"\n')
    code, out, _ = run_cli("gate", str(files["noise"]), "--targets", str(bad))
    assert code == 1 and "FAIL" in out


def test_missing_metric_is_an_error_exit_2(
    run_cli: RunCli, files: dict[str, Path], tmp_path: Path
) -> None:
    t = write(tmp_path, "t.toml", '"latency.p99_ms" = "< 80"\n"power.mean_w" = "< 60"\n')
    code, out, _ = run_cli("gate", str(files["noise"]), "--targets", str(t))
    assert code == 2
    assert "ERROR" in out and "power.mean_w" in out
    assert "latency.*" in out  # names what the result does have


def test_a_metric_stored_as_null_is_an_error_that_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    # a run whose fps came out NaN stores null: the gate must not say "no such metric"
    import json

    path = save_result(make_result(n=400, seed=3), tmp_path / "r.json")
    d = json.loads(path.read_text())
    d["throughput"]["fps"] = None
    d["stats"]["latency"]["p99_ms"] = None
    path.write_text(json.dumps(d))
    t = write(tmp_path, "t.toml", '"throughput.fps" = "> 12"\n"latency.p99_ms" = "< 80"\n')
    code, out, _ = run_cli("gate", str(path), "--targets", str(t))
    assert code == 2
    rows = [ln for ln in out.splitlines() if ln.startswith(("throughput.fps", "latency.p99_ms"))]
    assert len(rows) == 2
    for row in rows:
        assert "ERROR" in row and "records no value for it" in row and "no such metric" not in row


def test_env_mismatch_exits_3(run_cli: RunCli, files: dict[str, Path]) -> None:
    code, out, err = run_cli("gate", str(files["other_env"]), "--baseline", str(files["baseline"]))
    assert code == 3
    line = one_line_error(err)
    assert "device.jetpack: result '5.1.2' vs baseline '6.0'" in line
    code, out, _ = run_cli(
        "gate", str(files["other_env"]), "--baseline", str(files["baseline"]),
        "--allow-env-mismatch",
    )  # fmt: skip
    assert code == 0 and "device.jetpack" in out


def test_malformed_targets_exit_2_one_line(
    run_cli: RunCli, files: dict[str, Path], tmp_path: Path
) -> None:
    t = write(tmp_path, "t.toml", '[targets]\n"latency.p99_ms" = "< 80"\n"fps" = < 12\n')
    code, out, err = run_cli("gate", str(files["noise"]), "--targets", str(t))
    assert code == 2
    line = one_line_error(err)
    assert "t.toml" in line and "line 3" in line
    assert out == ""
    t2 = write(tmp_path, "t2.toml", '"latency.p99_ms" = "less than 80"\n')
    code, _, err = run_cli("gate", str(files["noise"]), "--targets", str(t2))
    assert code == 2 and "t2.toml:1:" in one_line_error(err)


def test_inconclusive_fails_closed_unless_allowed(run_cli: RunCli, files: dict[str, Path]) -> None:
    args = ("gate", str(files["short"]), "--baseline", str(files["baseline"]))
    code, out, _ = run_cli(*args)
    assert code == 1 and "INCONCLUSIVE" in out
    assert run_cli(*args, "--inconclusive-ok")[0] == 0


def test_junit_and_markdown_files(run_cli: RunCli, files: dict[str, Path], tmp_path: Path) -> None:
    junit, md = tmp_path / "out" / "gate.xml", tmp_path / "gate.md"
    code, _, _ = run_cli(
        "gate", str(files["slow"]), "--baseline", str(files["baseline"]),
        "--junit", str(junit), "--markdown", str(md),
    )  # fmt: skip
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failures = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failures and all(c.find("failure").get("type") == "regressed" for c in failures)  # type: ignore[union-attr]
    text = md.read_text()
    assert "| Metric | Check | Status |" in text and "`latency.p99_ms`" in text
    assert "**REGRESSED**" in text


@pytest.mark.parametrize("how", ["parent-is-a-file", "path-is-a-folder"])
def test_unwritable_junit_exits_2_without_partial_file(
    run_cli: RunCli, files: dict[str, Path], tmp_path: Path, how: str
) -> None:
    if how == "parent-is-a-file":
        target = files["noise"] / "gate.xml"
    else:
        target = tmp_path / "a-folder"
        target.mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = run_cli(
        "gate", str(files["noise"]), "--baseline", str(files["baseline"]), "--junit", str(target)
    )
    assert code == 2
    assert "JUnit" in one_line_error(err) or "cannot write" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_nothing_to_gate_and_bad_inputs(
    run_cli: RunCli, files: dict[str, Path], tmp_path: Path
) -> None:
    code, _, err = run_cli("gate", str(files["noise"]))
    assert code == 2 and "--targets" in one_line_error(err)
    code, _, err = run_cli(
        "gate", str(tmp_path / "missing.json"), "--baseline", str(files["noise"])
    )
    assert code == 2 and "not found" in one_line_error(err)
    broken = write(tmp_path, "broken.json", '{"schema_version": 1, "environment": ')
    code, _, err = run_cli("gate", str(broken), "--baseline", str(files["noise"]))
    assert code == 2 and "not valid JSON" in one_line_error(err)
    code, _, err = run_cli(
        "gate", str(files["noise"]), "--baseline", "a.json", "--baseline-dir", str(tmp_path)
    )
    assert code == 2 and "not allowed with" in err


def test_baseline_record_then_gate_with_baseline_dir(
    run_cli: RunCli, files: dict[str, Path], tmp_path: Path
) -> None:
    bdir = tmp_path / "baselines"
    code, _, err = run_cli("gate", str(files["noise"]), "--baseline-dir", str(bdir))
    assert code == 2 and "baseline record" in one_line_error(err)

    code, out, _ = run_cli("baseline", "record", str(files["baseline"]), "--to", str(bdir))
    assert code == 0
    stored = bdir / "jetson-agx-orin-64gb/jp6.0-trt8.6.2/maxn/tensorrt-fp16/bevfusion-tiny.json"
    assert stored.is_file() and str(stored) in out

    code, _, err = run_cli("baseline", "record", str(files["slow"]), "--to", str(bdir))
    assert code == 2 and "--replace" in one_line_error(err)

    code, out, _ = run_cli("gate", str(files["noise"]), "--baseline-dir", str(bdir))
    assert code == 0 and str(stored) in out
    code, out, _ = run_cli("gate", str(files["slow"]), "--baseline-dir", str(bdir))
    assert code == 1

    code, _, _ = run_cli("baseline", "record", str(files["slow"]), "--to", str(bdir), "--replace")
    assert code == 0
    assert len(list(stored.parent.glob("bevfusion-tiny.*.json"))) == 1
    code, _, _ = run_cli("gate", str(files["slow"]), "--baseline-dir", str(bdir))
    assert code == 0


def test_baseline_needs_an_action(run_cli: RunCli) -> None:
    code, _, err = run_cli("baseline")
    assert code == 2 and "Traceback" not in err
