"""The self-test's power rows with jetson-stats' real jtop server and client on a simulated board
(the server needs root and a private /fake_sys: see tests/test_telemetry_jtop.py, whose fixture
this reuses and which skips when another test holds /fake_sys)."""

from __future__ import annotations

import pytest
from test_telemetry_jtop import jtop_server  # noqa: F401  (the fixture)

from orinbench.selftest import PASS, SKIPPED, SelftestOptions, exit_code, run_selftest


@pytest.mark.root
@pytest.mark.slow
def test_jtop_and_sysfs_agree_in_the_crosscheck(jtop_server, tmp_path) -> None:  # noqa: F811
    board, sock, _ = jtop_server
    board.set_rail("VDD_IN", mv=5000, ma=1000)  # 5 W
    options = SelftestOptions(
        quick=True, root=str(board.root), jtop_socket=sock, only=("power.crosscheck",)
    )
    report = run_selftest(out_dir=tmp_path / "out", options=options)
    rows = {r.id: r for r in report.rows}
    assert list(rows) == ["power.jtop", "power.sysfs", "power.tegrastats", "power.crosscheck"]
    assert rows["power.jtop"].status == PASS, rows["power.jtop"].reason
    assert rows["power.jtop"].evidence["mean_total_w"] == pytest.approx(5.0)
    assert rows["power.tegrastats"].status == SKIPPED  # the fake board has no tegrastats
    cross = rows["power.crosscheck"]
    assert cross.status == PASS, cross.reason
    (pair,) = cross.evidence["pairs"]
    assert pair["pair"] == "sysfs - jtop" and abs(pair["diff_w"]) <= pair["tolerance_w"]
    assert exit_code(report) == 0
