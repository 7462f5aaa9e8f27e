"""The HTML report opened in headless Chromium (Debian's ``chromium``): it renders without console
errors, every plot image loads, no network is touched, and a screenshot is not a blank page.

Three browser launches in all (the machine has two cores): the report with a checker script, a
control page with a broken plot (proving the checker can fail), and a screenshot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_synth import decide_extra, make_result, soak_extra

from orinbench.gate import parse_targets
from orinbench.report import build_report

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it",
    ),
]

#: flags that keep Chromium headless, sandbox-free (root in CI) and off the network
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    # any name lookup fails: a page that needed the network would show load errors
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

#: appended to a copy of the page: after load, write what rendered into the DOM
CHECKER = """
<script>
(() => {
  const errors = [];
  window.addEventListener("error", (e) => {
    const t = e.target;
    const what = (t && t.dataset && t.dataset.plot) || "";
    errors.push(e.message || ("failed to load " + (t && t.tagName) + " " + what));
  }, true);
  window.addEventListener("load", () => {
    const imgs = Array.from(document.querySelectorAll("img.plot-img"));
    const loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
    const figs = document.querySelectorAll("figure.plot").length;
    const out = document.createElement("pre");
    out.id = "orinbench-check";
    out.textContent = JSON.stringify({
      figures: figs, plots: imgs.length, loaded: loaded.map((i) => i.dataset.plot), errors: errors,
      sections: Array.from(document.querySelectorAll("section")).map((s) => s.id),
    });
    document.body.appendChild(out);
  });
})();
</script>
"""


def _chromium(*args: str, profile: Path, timeout: int = 90) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check(page: Path, tmp: Path) -> tuple[dict[str, object], list[str]]:
    """Open ``page`` with the checker: (what rendered, console lines on stderr)."""
    probe = tmp / f"probe-{page.name}"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", CHECKER + "</body>"), encoding="utf-8")
    proc = _chromium(
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
        profile=tmp / f"profile-{page.stem}",
    )
    m = re.search(r'<pre id="orinbench-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"checker did not run (rc {proc.returncode}): {proc.stderr[-2000:]}"
    raw = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    state = json.loads(raw.replace("&amp;", "&"))
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return state, console


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    r = make_result(
        seed=1, median_ms=21.0, stages=True, extra={"soak": soak_extra(), "decide": decide_extra()}
    )
    b = make_result(seed=2, median_ms=20.0, stages=True)
    targets = parse_targets('"latency.p99_ms" = "< 30"\n', source="targets.toml")
    page = tmp / "report.html"
    page.write_text(
        build_report([r], baseline=b, baseline_name="base.json", targets=targets).to_html(),
        encoding="utf-8",
    )
    return page


def test_report_renders_every_plot_without_console_errors(report_page: Path) -> None:
    expected = set(re.findall(r'data-plot="([^"]+)"', report_page.read_text(encoding="utf-8")))
    assert expected == {"latency-hist-0", "latency-cdf-0", "stages-0", "power-0", "soak-0"}
    state, console = _check(report_page, report_page.parent)
    assert console == [], console
    assert state["errors"] == []
    assert state["plots"] == state["figures"] == len(expected)
    assert set(state["loaded"]) == expected  # type: ignore[arg-type]
    assert {"verdict", "latency", "stages", "power", "soak", "decide"} <= set(state["sections"])  # type: ignore[arg-type]


def test_checker_catches_a_broken_plot(report_page: Path) -> None:
    broken = report_page.parent / "broken.html"
    text = report_page.read_text(encoding="utf-8")
    # corrupt the first plot's PNG: the browser cannot decode it
    text = re.sub(
        r'src="data:image/png;base64,[^"]{40}', 'src="data:image/png;base64,AAAAAAAA', text, count=1
    )
    broken.write_text(text, encoding="utf-8")
    state, _ = _check(broken, report_page.parent)
    assert len(state["loaded"]) == state["plots"] - 1  # type: ignore[arg-type, operator]
    assert state["errors"], "a plot that fails to load must be reported"


def test_screenshot_is_not_blank(report_page: Path) -> None:
    shot = report_page.parent / "report.png"
    proc = _chromium(
        "--window-size=1200,2400",
        "--virtual-time-budget=10000",
        f"--screenshot={shot}",
        report_page.as_uri(),
        profile=report_page.parent / "profile-shot",
    )
    assert shot.exists(), proc.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[0] == 2400 and img.shape[1] == 1200
    rgb = img[..., :3]
    # a blank page is one colour; the report has text, tables and plots in many colours
    assert float(np.std(rgb)) > 0.1
    non_white = float(np.mean(np.any(rgb < 0.85, axis=-1)))
    assert non_white > 0.05
    colours = len(np.unique((rgb[::4, ::4] * 15).round().reshape(-1, 3), axis=0))
    assert colours > 50
