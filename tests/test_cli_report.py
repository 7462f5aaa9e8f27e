"""``orinbench report`` end to end: outputs, verdicts, trend, and every kind of bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _report_synth import make_result
from _unprivileged import assert_cannot_write, run_python

from orinbench.history.store import HistoryStore
from orinbench.results.io import save_result

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "today": tmp_path / "today.json",
        "other": tmp_path / "other.json",
        "base": tmp_path / "base.json",
        "targets": tmp_path / "targets.toml",
    }
    save_result(make_result(seed=1, median_ms=21.0, stages=True), paths["today"])
    save_result(make_result(seed=3, median_ms=19.0), paths["other"])
    save_result(make_result(seed=2, median_ms=20.0, stages=True), paths["base"])
    paths["targets"].write_text('"latency.p99_ms" = "< 22"\n"throughput.fps" = "> 10"\n')
    return paths


def test_html_and_markdown(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    html, md = tmp_path / "out" / "report.html", tmp_path / "out" / "summary.md"
    code, out, err = run_cli(
        "report",
        str(files["today"]),
        "--baseline",
        str(files["base"]),
        "--targets",
        str(files["targets"]),
        "--html",
        str(html),
        "--markdown",
        str(md),
    )
    assert code == 0, err  # the report never gates; the verdict is in the page
    page = html.read_text()
    assert (
        page.startswith("<!DOCTYPE html>") and page.count('class="plot-img"') == 4
    )  # hist, CDF, stages, power
    assert "badge-FAIL" in page and "base.json" in page and "targets.toml" in page
    summary = md.read_text()
    assert "### today: FAIL" in summary and "| `latency.p99_ms` | target | **FAIL** |" in summary
    assert "today: gate FAIL" in out
    assert f"report written to {html}" in out and f"report written to {md}" in out


def test_markdown_to_stdout_by_default(run_cli: Run, files: dict[str, Path]) -> None:
    code, out, err = run_cli("report", str(files["today"]), str(files["other"]))
    assert code == 0, err
    assert out.startswith("## orinbench report") and "| today |" in out and "| other |" in out
    code2, out2, _ = run_cli("report", str(files["today"]), "--markdown", "-")
    assert code2 == 0 and out2.startswith("## orinbench report")


def test_several_results_in_one_page(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    code, _, err = run_cli(
        "report",
        str(files["today"]),
        str(files["other"]),
        "--html",
        str(html),
        "--title",
        "nightly",
    )
    assert code == 0, err
    page = html.read_text()
    assert "<title>nightly</title>" in page and 'data-plot="comparison-cdf"' in page


def test_trend_from_history(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        for i in range(10):
            store.append(
                make_result(seed=10 + i, median_ms=20.0 if i < 5 else 22.0), command="bench"
            )
    html = tmp_path / "r.html"
    code, _, err = run_cli("report", str(files["today"]), "--history", str(db), "--html", str(html))
    assert code == 0, err
    page = html.read_text()
    assert '<section id="trend">' in page and "10 run(s) of this device" in page


def test_incomparable_baseline_still_gives_a_page(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    nano = tmp_path / "nano.json"
    save_result(make_result(seed=2, module="NVIDIA Jetson Orin Nano 8GB"), nano)
    html = tmp_path / "r.html"
    code, out, _ = run_cli(
        "report", str(files["today"]), "--baseline", str(nano), "--html", str(html)
    )
    assert code == 0
    assert "not compared" in out and "badge-INCOMPARABLE" in html.read_text()


@pytest.mark.parametrize(
    "content, expect",
    [
        (b"{not json", "is not valid JSON"),
        (b'{"schema_version": 99, "environment": {}}', "newer than this orinbench"),
        (b"\xff\xfe\x00garbage", "not a JSON text file"),
        (b'{"hello": 1}', "is not an orinbench result"),
    ],
)
def test_unreadable_result_exits_2(
    run_cli: Run, tmp_path: Path, content: bytes, expect: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    html = tmp_path / "r.html"
    code, _, err = run_cli("report", str(bad), "--html", str(html))
    assert code == 2 and expect in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not html.exists()


def test_missing_files_exit_2(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run_cli("report", str(tmp_path / "nope.json"))
    assert code == 2 and "not found" in err
    code, _, err = run_cli("report", str(files["today"]), "--baseline", str(tmp_path / "b.json"))
    assert code == 2 and "not found" in err
    code, _, err = run_cli("report", str(files["today"]), "--targets", str(tmp_path / "t.toml"))
    assert code == 2 and "targets file not found" in err


def test_unwritable_html_path_exits_2(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run_cli("report", str(files["today"]), "--html", str(tmp_path))
    assert code == 2 and "it is a folder" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli("report", str(files["today"]), "--html", str(blocker / "sub" / "r.html"))
    assert code == 2 and "cannot write" in err and "Traceback" not in err
    assert not (blocker / "sub").exists()


def test_read_only_folder_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    # in a subprocess that root's permission override does not reach (CI runs as root)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_cannot_write(ro)
        proc = run_python(
            ["-m", "orinbench", "report", str(files["today"]), "--html", str(ro / "r.html")]
        )
    finally:
        ro.chmod(0o700)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert list(ro.iterdir()) == []


def test_locked_history_for_trend_exits_2(
    run_cli: Run, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orinbench.history import store as store_mod

    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        store.append(make_result(seed=1), command="bench")
    monkeypatch.setattr(store_mod, "DEFAULT_LOCK_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = run_cli("report", str(files["today"]), "--history", str(db))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "is locked" in err and "Traceback" not in err


def test_baseline_dir_finds_the_recorded_baseline(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    base_dir = tmp_path / "baselines"
    code, _, err = run_cli(
        "baseline", "record", str(files["base"]), "--to", str(base_dir), "--allow-imprecise"
    )
    assert code == 0, err
    html = tmp_path / "r.html"
    code, out, err = run_cli(
        "report", str(files["today"]), "--baseline-dir", str(base_dir), "--html", str(html)
    )
    assert code == 0, err
    assert "today: gate" in out and "baseline: bevfusion_tiny.json" in html.read_text()
    code, _, err = run_cli("report", str(files["today"]), "--baseline-dir", str(tmp_path / "empty"))
    assert code == 2 and "no baseline for" in err and "orinbench baseline record" in err


def test_trend_without_history_yet(run_cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    html = tmp_path / "r.html"
    code, _, err = run_cli("report", str(files["today"]), "--history", str(db), "--html", str(html))
    assert code == 0, err
    assert "holds no run of this device" in html.read_text()
    assert not db.exists()  # reading for a trend never creates a database
