"""The HTML and Markdown reports built from synthetic results (no browser here: see
test_report_browser.py)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_synth import decide_extra, make_result, soak_extra

from orinbench.gate import parse_targets
from orinbench.history.store import HistoryStore
from orinbench.report import build_report
from orinbench.report.html import slowest_stage

REPO = Path(__file__).resolve().parents[1]
TARGETS = parse_targets('"latency.p99_ms" = "< 22"\n"throughput.fps" = "> 10"\n', source="t.toml")


def _plots(page: str) -> dict[str, bytes]:
    """data-plot key -> decoded PNG bytes, for every plot image in the page."""
    out = {}
    for m in re.finditer(
        r'<img class="plot-img" data-plot="([^"]+)"[^>]*src="data:image/png;base64,'
        r'([A-Za-z0-9+/=]+)"',
        page,
    ):
        out[m.group(1)] = base64.b64decode(m.group(2))
    return out


@pytest.fixture(scope="module")
def full_page() -> str:
    r = make_result(
        seed=1, median_ms=21.0, stages=True, extra={"soak": soak_extra(), "decide": decide_extra()}
    )
    b = make_result(seed=2, median_ms=20.0, stages=True)
    return build_report([r], baseline=b, baseline_name="base.json", targets=TARGETS).to_html()


def test_every_section_and_plot_is_present(full_page: str) -> None:
    plots = _plots(full_page)
    assert set(plots) == {"latency-hist-0", "latency-cdf-0", "stages-0", "power-0", "soak-0"}
    for key, png in plots.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), key
    for sid in (
        "verdict",
        "summary",
        "latency",
        "stages",
        "power",
        "soak",
        "decide",
        "environment",
    ):
        assert f'<section id="{sid}">' in full_page
    # the decision table's rows and columns
    assert "over budget" in full_page and "<th>map_drop</th>" in full_page
    # the soak's scalar drift figure is listed
    assert "p99_drift_pct" in full_page


def test_page_is_self_contained(full_page: str) -> None:
    # no external resource of any kind: no scripts, no stylesheets, no remote images or fonts
    assert "<script" not in full_page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", full_page)
    assert "url(" not in full_page and "@import" not in full_page


def test_verdict_table_comes_from_the_gate(full_page: str) -> None:
    verdicts = full_page[
        full_page.index('<section id="verdict">') : full_page.index('<section id="summary">')
    ]
    # P99 of a 21 ms log-normal (sigma 0.08) is about 25 ms: the "< 22" target fails
    assert 'class="status-fail">FAIL<' in verdicts
    assert "<code>latency.p99_ms</code>" in verdicts and "&lt; 22" in verdicts
    assert 'class="status-pass">pass<' in verdicts  # fps > 10
    assert "badge-FAIL" in verdicts and "gate exit code 1" in verdicts
    # baseline checks appear too, with the baseline's value as the reference
    base_p50 = make_result(seed=2, median_ms=20.0, stages=True).stats["latency"]["p50_ms"]
    assert "<td>baseline</td>" in verdicts and f"<td>baseline {base_p50:.4g}</td>" in verdicts


def test_histogram_is_a_real_plot(full_page: str) -> None:
    png = _plots(full_page)["latency-hist-0"]
    img = mpimg.imread(__import__("io").BytesIO(png), format="png")
    assert img.shape[0] >= 300 and img.shape[1] >= 600
    # a blank figure is almost all white: a drawn histogram is not
    non_white = np.mean(np.any(img[..., :3] < 0.9, axis=-1))
    assert non_white > 0.05


def test_stage_that_slowed_most_is_named() -> None:
    base = make_result(seed=5, stages=True)
    st = {k: dict(v) for k, v in (base.stages or {}).items()}
    lat = dict(st["bev_pool"]["latency"])
    lat["p99_ms"] = lat["p99_ms"] * 1.4
    st["bev_pool"] = {**st["bev_pool"], "latency": lat}
    slower = base.with_(stages=st)
    assert slowest_stage(slower.stages or {}, base.stages or {})[0] == "bev_pool"  # type: ignore[index]
    page = build_report([slower], baseline=base).to_html()
    assert "Stage that changed most against the baseline: <b>bev_pool</b> (P99 +40.0%)" in page


def test_optional_sections_are_left_out_without_data() -> None:
    r = make_result(seed=3, power=False, stages=False, gpu=False)
    page = build_report([r]).to_html()
    assert set(_plots(page)) == {"latency-hist-0", "latency-cdf-0"}
    for sid in ("verdict", "stages", "power", "soak", "decide", "comparison", "trend"):
        assert f'<section id="{sid}">' not in page


def test_several_results_get_a_comparison() -> None:
    rs = [make_result(seed=i, n=200, median_ms=18.0 + 2 * i, power=False) for i in range(3)]
    page = build_report(rs, names=["a", "b", "c"]).to_html()
    plots = _plots(page)
    assert {"comparison-cdf", "comparison-hist", "latency-hist-2"} <= set(plots)
    assert "<h3>c</h3>" in page


def test_incomparable_baseline_is_a_banner_not_a_crash() -> None:
    r = make_result(seed=1)
    other = make_result(seed=2, module="NVIDIA Jetson Orin Nano 8GB")
    report = build_report([r], baseline=other)
    entry = report.entries[0]
    assert entry.gate is None and entry.gate_error and "Orin Nano" in entry.gate_error
    page = report.to_html()
    assert "badge-INCOMPARABLE" in page
    md = report.to_markdown()
    assert "INCOMPARABLE" in md
    # with --allow-env-mismatch it is compared, the difference noted
    allowed = build_report([r], baseline=other, allow_env_mismatch=True)
    assert allowed.entries[0].gate is not None and allowed.entries[0].gate.env_warnings


def test_markdown_summary() -> None:
    r = make_result(seed=1, median_ms=21.0, stages=True, extra={"decide": decide_extra()})
    b = make_result(seed=2, median_ms=20.0, stages=True)
    md = build_report(
        [r], names=["today"], baseline=b, baseline_name="base.json", targets=TARGETS
    ).to_markdown()
    assert md.startswith("## ")
    assert "### today: FAIL" in md  # the gate's heading names the result
    assert "| `latency.p99_ms` | target | **FAIL** |" in md
    assert "### Stages: today" in md and "baseline P99 ms" in md
    assert "| int8 | 14.5 | 70.3 | 2.4 | over budget |" in md
    assert "baseline (base.json)" in md


def test_trend_section_from_history(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        for i in range(12):
            store.append(make_result(seed=i, median_ms=20.0 if i < 6 else 24.0), command="bench")
        # another precision: must not enter this result's trend
        store.append(make_result(seed=50, precision="int8", median_ms=10.0), command="bench")
        rows = store.query()
    report = build_report([make_result(seed=99, median_ms=24.0)], history_rows=rows)
    assert len(report.trend_rows) == 12
    assert [s.run_id for s in report.steps] == [7]
    page = report.to_html()
    assert "trend" in _plots(page)
    assert "step change in latency.p99_ms at run 7" in page
    assert "step change in latency.p99_ms at run 7" in report.to_markdown()


def test_without_matplotlib_html_fails_with_the_fix_and_writes_nothing(tmp_path: Path) -> None:
    r = make_result(seed=1)
    path = tmp_path / "r.json"
    from orinbench.results.io import save_result

    save_result(r, path)
    out = tmp_path / "out.html"
    md = tmp_path / "out.md"
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
        from orinbench.report.build import report_files
        from orinbench.errors import OrinbenchError
        try:
            report_files([{str(path)!r}], html={str(out)!r}, markdown={str(md)!r})
        except OrinbenchError as e:
            print(e.exit_code, e)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 ") and "pip install 'orinbench[report]'" in proc.stdout
    assert not out.exists() and not md.exists()
