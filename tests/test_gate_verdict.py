"""GateReport: exit codes, JUnit XML and Markdown renderings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from orinbench.gate.verdict import NOTHING_CHECKED, GateReport, MetricVerdict, ReportWarning


def mv(metric: str, status: str, kind: str = "baseline", **kw: object) -> MetricVerdict:
    return MetricVerdict(metric=metric, kind=kind, status=status, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("statuses", "ok", "code"),
    [
        (["pass", "unchanged", "improved"], False, 0),
        (["pass", "fail"], False, 1),
        (["unchanged", "regressed"], False, 1),
        (["unchanged", "inconclusive"], False, 1),
        (["unchanged", "inconclusive"], True, 0),
        (["regressed", "inconclusive"], True, 1),
        (["fail", "error", "inconclusive"], False, 2),
        # nothing checked fails closed (issue 12 item 7)
        ([], False, 2),
        ([], True, 2),
    ],
)
def test_exit_code(statuses: list[str], ok: bool, code: int) -> None:
    r = GateReport(tuple(mv(f"m{i}", s) for i, s in enumerate(statuses)), inconclusive_ok=ok)
    assert r.exit_code == code
    assert r.outcome == {0: "PASS", 1: "FAIL", 2: "ERROR"}[code]


REPORT = GateReport(
    verdicts=(
        mv("latency.p99_ms", "pass", "target", value=50.0, threshold=80.0, op="<"),
        mv("throughput.fps", "fail", "target", value=10.0, threshold=12.0, op=">"),
        mv("power.mean_w", "error", "target", threshold=60.0, op="<", message="no such metric"),
        mv(
            "latency.p50_ms",
            "regressed",
            value=22.0,
            baseline_value=20.0,
            delta_pct=10.0,
            p_value=1e-9,
            ci=(1.08, 1.12),
            message="10.0% higher <&> than | the baseline",
        ),
        mv(
            "latency.p95_ms",
            "inconclusive",
            value=21.0,
            baseline_value=20.0,
            delta_pct=5.0,
            message="too few samples",
        ),
        mv("latency.mean_ms", "unchanged", value=20.1, baseline_value=20.0, delta_pct=0.5),
    ),
    warnings=(ReportWarning("result", "high-variation", "cv 23% exceeds 10%"),),
    env_warnings=("compared despite differing device.l4t: result '36.4' vs baseline '36.3'",),
)


def test_junit_is_valid_xml_with_one_testcase_per_verdict() -> None:
    root = ET.fromstring(REPORT.to_junit_xml())
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [v.metric for v in REPORT.verdicts]
    kinds = {c.get("name"): [child.tag for child in c] for c in cases}
    assert kinds["throughput.fps"] == ["failure"]
    assert kinds["power.mean_w"] == ["error"]
    assert kinds["latency.p50_ms"] == ["failure"]
    assert kinds["latency.p95_ms"] == ["failure"]  # inconclusive fails closed
    assert suite.get("tests") == "6" and suite.get("failures") == "3"
    assert suite.get("errors") == "1" and suite.get("skipped") == "0"
    p50 = next(c for c in cases if c.get("name") == "latency.p50_ms").find("failure")
    assert p50 is not None and p50.get("type") == "regressed"
    assert "<&>" in (p50.get("message") or "")  # escaped in the file, intact once parsed
    out = suite.find("system-out")
    assert out is not None and "high-variation" in (out.text or "") and "l4t" in (out.text or "")


def test_junit_marks_inconclusive_skipped_when_allowed() -> None:
    ok = GateReport(REPORT.verdicts, inconclusive_ok=True)
    suite = ET.fromstring(ok.to_junit_xml()).find("testsuite")
    assert suite is not None and suite.get("skipped") == "1" and suite.get("failures") == "2"
    case = next(c for c in suite.findall("testcase") if c.get("name") == "latency.p95_ms")
    assert [child.tag for child in case] == ["skipped"]


def test_markdown_table() -> None:
    md = REPORT.to_markdown()
    lines = md.splitlines()
    assert lines[0] == "### orinbench gate: ERROR"
    header = next(i for i, ln in enumerate(lines) if ln.startswith("| Metric"))
    rows = lines[header + 2 : header + 2 + len(REPORT.verdicts)]
    assert all(r.startswith("| `") for r in rows)
    # every row has the header's number of cells, even with a '|' inside a message
    ncols = lines[header].count(" | ") + 1
    assert all(r.replace("\\|", "").count(" | ") + 1 == ncols for r in rows)
    assert "**REGRESSED**" in md and "+10.0%" in md and "<0.001" in md
    assert "high-variation" in md and "device.l4t" in md


def test_text_table_and_summary() -> None:
    text = REPORT.to_text()
    assert text.splitlines()[0].split() == [
        "metric", "check", "status", "value", "against", "delta", "p", "note"
    ]  # fmt: skip
    assert "REGRESSED" in text and "baseline 20" in text and "< 80" in text
    assert text.splitlines()[-1] == (
        "gate ERROR: 1 pass, 1 unchanged, 1 fail, 1 regressed, 1 inconclusive, 1 error"
    )


# -- pinned by mutation testing (benchmarks/mutate.py): exact renderings -----------------------

SMALL = GateReport(
    verdicts=(
        mv("a.p99_ms", "pass", "target", value=50.0, threshold=80.0, op="<"),
        mv(
            "b",
            "regressed",
            value=22.0,
            baseline_value=20.0,
            delta_pct=10.0,
            tolerance_pct=5.0,
            p_value=0.0005,
            ci=(1.08, 1.12),
            message="slower",
        ),
    ),
    warnings=(ReportWarning("result", "high-variation", "cv 23%"),),
    env_warnings=("device.l4t: x",),
)
# written out by hand: columns padded to their widest cell, two spaces apart, note unpadded
SMALL_TEXT = """\
metric    check     status     value  against      delta   p       note
--------  --------  ---------  -----  -----------  ------  ------  ----
a.p99_ms  target    pass       50     < 80         -       -
b         baseline  REGRESSED  22     baseline 20  +10.0%  <0.001  slower
warning: environment: device.l4t: x
warning: result: [high-variation] cv 23%
gate FAIL: 1 pass, 1 regressed"""
B_DETAIL = (
    "regressed: b = 22 (baseline 20), delta +10.0%, tolerance 5%, p=<0.001, "
    "ratio CI [1.0800, 1.1200]. slower"
)


def test_text_rendering_exactly() -> None:
    assert SMALL.to_text() == SMALL_TEXT


def test_markdown_rendering_exactly() -> None:
    lines = SMALL.to_markdown().splitlines()
    assert lines[:4] == ["### orinbench gate: FAIL", "", "gate FAIL: 1 pass, 1 regressed", ""]
    assert lines[4] == "| Metric | Check | Status | Value | Against | Delta | P | Note |"
    # numbers right-aligned: value, against, delta, p
    assert lines[5] == "|---|---|---|---:|---:|---:|---:|---|"
    assert lines[6] == "| `a.p99_ms` | target | pass | 50 | < 80 | - | - |  |"
    assert lines[7] == (
        "| `b` | baseline | **REGRESSED** | 22 | baseline 20 | +10.0% | <0.001 | slower |"
    )
    assert lines[8:] == [
        "",
        "**Warnings**",
        "",
        "- environment: device.l4t: x",
        "- result: [high-variation] cv 23%",
    ]


def test_junit_texts_and_layout() -> None:
    report = GateReport(
        (
            *SMALL.verdicts,
            mv("c", "error", "target", threshold=1.0, op="<", message="no such metric"),
            mv("d", "inconclusive", value=1.0, baseline_value=1.0, message="few"),
        ),
        warnings=SMALL.warnings,
    )
    xml = report.to_junit_xml()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    assert '\n  <testsuite name="orinbench.gate"' in xml  # indented
    root = ET.fromstring(xml)
    assert root.get("name") == "orinbench" and root.get("tests") == "4"
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    # every child element carries the detail as its text as well as in its message
    passed = cases["a.p99_ms"].find("system-out")
    assert passed is not None and passed.text == "pass: a.p99_ms = 50 (< 80)"
    failure = cases["b"].find("failure")
    assert failure is not None and failure.text == failure.get("message") == B_DETAIL
    error = cases["c"].find("error")
    assert error is not None and error.text == "error: c = - (< 1). no such metric"
    inconclusive = cases["d"].find("failure")
    assert inconclusive is not None and inconclusive.get("type") == "inconclusive"
    assert inconclusive.text == "inconclusive: d = 1 (baseline 1). few"


@pytest.mark.parametrize(
    ("p", "text"), [(0.0009, "<0.001"), (0.001, "0.001"), (0.0007, "<0.001"), (0.04567, "0.046")]
)
def test_p_value_text_at_its_boundary(p: float, text: str) -> None:
    report = GateReport((mv("m", "unchanged", value=1.0, baseline_value=1.0, p_value=p),))
    # columns: m, baseline, unchanged, 1, "baseline 1" (two words), delta -, p
    assert report.to_text().splitlines()[2].split()[7] == text


def test_nothing_checked_says_why_and_what_to_do() -> None:
    empty = GateReport(())
    assert empty.summary() == f"gate ERROR: {NOTHING_CHECKED}"
    assert "[targets]" in NOTHING_CHECKED and "baseline" in NOTHING_CHECKED
    assert empty.to_text().splitlines()[-1] == empty.summary()
