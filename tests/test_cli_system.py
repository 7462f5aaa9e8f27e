"""``orinbench system check`` on fake boards: exit 0 when ready, 4 when not, 2 on misuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402


def test_ready_board_exits_0_and_prints_its_state(run_cli, tmp_path):
    FakeBoard(tmp_path, "agx-orin-64gb")
    code, out, err = run_cli(
        "system", "check", "--root", str(tmp_path), "--expect-power-mode", "MAXN"
    )
    assert code == 0, err
    assert "NVIDIA Jetson AGX Orin Developer Kit (Jetson AGX Orin 64GB)" in out
    assert "35.4.1 / 5.1.2" in out
    assert "MAXN (id 0), expected MAXN" in out
    assert "ready          yes" in out
    assert err == ""


def test_untuned_board_exits_4_with_reasons_and_fixes(run_cli, tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    board.unlock_clocks()
    code, out, err = run_cli("system", "check", "--root", str(tmp_path))
    assert code == 4
    assert "clocks not locked" in out and "sudo jetson_clocks" in out
    assert err.startswith("orinbench: not ready to benchmark: clocks not locked")
    assert len(err.strip().splitlines()) == 1


def test_wrong_power_mode_as_json(run_cli, tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.set_power_mode(3)
    code, out, _ = run_cli(
        "system", "check", "--root", str(tmp_path), "--json", "--expect-power-mode", "MAXN"
    )
    assert code == 4
    state = json.loads(out)
    assert state["ready"] is False
    assert (state["power_mode"], state["power_mode_id"]) == ("25W", 3)
    assert state["reasons"] == ["power mode is 25W (id 3), expected MAXN"]
    assert state["fixes"] == ["sudo nvpmodel -m 0"]
    assert state["jetson_clocks"] is True


def test_not_a_jetson_exits_4(run_cli, tmp_path):
    code, out, _ = run_cli("system", "check", "--root", str(tmp_path))
    assert code == 4
    assert "not a Jetson" in out


def test_misuse_exits_2(run_cli):
    code, _, err = run_cli("system")
    assert code == 2 and "check" in err
    code, _, err = run_cli("system", "check", "--bogus")
    assert code == 2 and "unrecognized arguments" in err


def test_real_command_in_a_subprocess(tmp_path, orinbench_exe):
    FakeBoard(tmp_path, "orin-nx-16gb")
    proc = subprocess.run(
        [*orinbench_exe, "system", "check", "--root", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["module_name"] == "Jetson Orin NX 16GB"
