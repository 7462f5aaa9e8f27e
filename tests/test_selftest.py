"""``orinbench selftest`` on this machine for real (x86, no TensorRT, no Jetson): ONNX Runtime rows
pass, device rows are skipped with their reasons; a failing check fails its row only; the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orinbench import _lazy
from orinbench.errors import ResultFormatError
from orinbench.selftest import (
    FAIL,
    PASS,
    SCHEMA_VERSION,
    SKIPPED,
    Check,
    Row,
    SelftestOptions,
    all_checks,
    exit_code,
    read_selftest,
    run_selftest,
)
from orinbench.selftest.render import render_html
from orinbench.selftest.rows import CheckFailed, SelftestReport, Skip

HAS_ORT = _lazy.is_available("onnxruntime")
HAS_TRT = _lazy.is_available("tensorrt")


@pytest.mark.skipif(not HAS_ORT or HAS_TRT, reason="needs ONNX Runtime and no TensorRT (CI)")
def test_cli_runs_for_real_here_and_skips_the_device_rows(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "st"
    code, stdout, err = run_cli("selftest", "--out", str(out), "--quick")
    assert code == 0, err
    assert "Traceback" not in err
    report = read_selftest(out / "selftest.json")
    rows = {r.id: r for r in report.rows}
    assert list(rows) == [c.id for c in all_checks()]
    for rid in ("env.fingerprint", "zoo.sample", "ort.bench"):
        assert rows[rid].status == PASS, (rid, rows[rid].reason)
    assert rows["ort.bench"].evidence["p50_ms"] > 0
    assert rows["ort.bench"].evidence["iterations"] == SelftestOptions().quick_iterations
    assert rows["env.fingerprint"].evidence["fingerprint"]["is_jetson"] is False
    # not a Jetson: no row ran and failed, and every skipped row says why
    assert not report.failed
    skipped = [r for r in report.rows if r.status == SKIPPED]
    assert all(r.reason for r in skipped)
    assert "not a Jetson" in rows["system.check"].reason
    assert rows["trt.build.fp32"].reason.startswith("TensorRT is not installed")
    assert "python3-libnvinfer" in rows["trt.build.fp32"].fix  # the JetPack package
    assert rows["trt.bench.int8.graph"].reason.startswith("needs trt.build.int8")
    assert "not a Jetson" in rows["power.sysfs"].reason
    # the table printed, and the page: one row each, statuses as in the JSON
    assert "ort.bench" in stdout and "passed" in stdout and "selftest.html" in stdout
    page = (out / "selftest.html").read_text()
    for r in report.rows:
        assert f'<tr id="row-{r.id}" data-status="{r.status}">' in page
    data = json.loads((out / "selftest.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["ok"] is True
    assert data["summary"][PASS] >= 3 and data["summary"][FAIL] == 0
    assert not list(out.glob(".*.tmp"))  # atomic writes left nothing behind


def _report(tmp_path: Path, checks: list[Check]) -> SelftestReport:
    return run_selftest(out_dir=tmp_path / "out", checks=checks)


def test_a_failing_check_fails_its_row_and_the_rest_still_run(tmp_path: Path) -> None:
    seen: list[str] = []

    def ok(ctx):
        seen.append("ok")
        return "fine", {"x": 1.5}

    def broken(ctx):
        seen.append("broken")
        return {}["missing"]  # a bug in a check: KeyError

    def wrong(ctx):
        raise CheckFailed("3 != 4", fix="look", evidence={"got": 3})

    def later(ctx):
        seen.append("later")
        return "still ran", {}

    report = _report(
        tmp_path,
        [
            Check("a", "a", ok),
            Check("b", "b", broken),
            Check("c", "c", wrong),
            Check("d", "d", later),
            Check("e", "e", ok, needs=("b",)),
        ],
    )
    rows = {r.id: r for r in report.rows}
    assert [rows[k].status for k in "abcde"] == [PASS, FAIL, FAIL, PASS, SKIPPED]
    assert seen == ["ok", "broken", "later"]
    assert rows["b"].reason == "KeyError: 'missing'"
    assert (
        "Traceback" in rows["b"].evidence["traceback"]
        and "broken" in rows["b"].evidence["traceback"]
    )
    assert (rows["c"].reason, rows["c"].fix, rows["c"].evidence) == ("3 != 4", "look", {"got": 3})
    assert rows["e"].reason == "needs b, which was fail: KeyError: 'missing'"
    assert exit_code(report) == 1


def test_the_cli_exits_1_when_a_row_fails(tmp_path: Path, run_cli, monkeypatch) -> None:
    from orinbench.selftest import checks as checks_mod

    def boom(ctx):
        raise RuntimeError("simulated driver crash")

    real = checks_mod.all_checks

    def patched():
        return tuple(
            Check(c.id, c.title, boom, c.needs) if c.id == "env.fingerprint" else c for c in real()
        )

    monkeypatch.setattr("orinbench.selftest.run.all_checks", patched)
    out = tmp_path / "st"
    code, _stdout, err = run_cli("selftest", "--out", str(out), "--quick", "--only", "env,zoo")
    assert code == 1
    assert "1 row(s) failed: env.fingerprint" in err
    report = read_selftest(out / "selftest.json")
    assert [(r.id, r.status) for r in report.rows] == [
        ("env.fingerprint", FAIL),
        ("zoo.sample", PASS),
    ]
    assert report.rows[0].reason == "RuntimeError: simulated driver crash"


def test_a_skip_carries_its_reason_and_fix(tmp_path: Path) -> None:
    def missing(ctx):
        raise Skip("no DLA on this module", fix="nothing to do", evidence={"dla_cores": 0})

    def dependency(ctx):
        _lazy.require("surely_not_installed_module_xyz")
        return "", {}

    report = _report(tmp_path, [Check("s", "s", missing), Check("d", "d", dependency)])
    s, d = report.rows
    assert (s.status, s.reason, s.fix, dict(s.evidence)) == (
        SKIPPED,
        "no DLA on this module",
        "nothing to do",
        {"dla_cores": 0},
    )
    # a missing optional runtime is a skip naming what to install, not a failure
    assert d.status == SKIPPED and "not installed" in d.reason and "pip install" in d.fix
    assert exit_code(report) == 0


def test_usage_errors_are_one_line_exit_2(tmp_path: Path, run_cli) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run_cli("selftest", "--out", str(f))
    assert code == 2 and "is a file" in err and "Traceback" not in err
    assert f.read_text() == "x"
    code, _, err = run_cli("selftest", "--out", str(tmp_path / "o"), "--only", "nope")
    assert code == 2 and "--only names no self-test row 'nope'" in err
    assert not (tmp_path / "o" / "selftest.json").exists()


def test_only_takes_prefixes_and_the_rows_they_need(tmp_path: Path) -> None:
    report = run_selftest(
        out_dir=tmp_path / "o", options=SelftestOptions(quick=True, only=("trt.int8",))
    )
    assert [r.id for r in report.rows] == ["zoo.sample", "trt.build.int8", "trt.int8.cache"]


def test_html_escapes_everything_and_json_refuses_newer_versions(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    report = SelftestReport(
        rows=(
            Row(
                id="x.y",
                title=evil,
                status=FAIL,
                reason=evil,
                fix=evil,
                evidence={"log_tail": evil, evil: [evil]},
            ),
        ),
        orinbench_version="0",
        started_utc="now",
        duration_s=1.0,
        environment={"host": evil},
    )
    page = render_html(report)
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 5
    assert "<details>" in page
    d = report.to_dict()
    d["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "selftest.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ResultFormatError, match="schema version"):
        read_selftest(p)
    with pytest.raises(ValueError):
        Row(id="a", title="a", status="maybe")


def test_evidence_that_is_not_json_is_made_safe(tmp_path: Path) -> None:
    import numpy as np

    def odd(ctx):
        return "", {"p": tmp_path, "n": np.float32(1.5), "inf": float("inf"), "t": (1, 2)}

    (row,) = _report(tmp_path, [Check("o", "o", odd)]).rows
    assert dict(row.evidence) == {"p": str(tmp_path), "n": 1.5, "inf": None, "t": [1, 2]}
