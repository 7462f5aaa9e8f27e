"""jtop: jetson-stats' real server and client against a simulated board, as its own CI does.

The server runs as root with ``JTOP_TESTING=true`` (it then reads ``/fake_sys``), a group named
``jtop``, a small fake ``nvpmodel`` on PATH and ``get_hardware`` replaced; it listens on a private
socket instead of ``/run/jtop.sock``. ``/fake_sys`` is a link to the fake board's ``sys`` folder in
the test's temporary directory. One server at a time: these tests must run serially. Everything
the fixture creates (link, group, jtop's config folder, socket) is removed by its finalizer.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

from orinbench import _lazy  # noqa: E402
from orinbench.errors import PowerSourceError  # noqa: E402
from orinbench.telemetry.power import summarize_power  # noqa: E402
from orinbench.telemetry.select import open_power_source  # noqa: E402
from orinbench.telemetry.sources.jtop import (  # noqa: E402
    JtopPowerSource,
    parse_jtop_power,
    probe_jtop,
)

FAKE_SYS = Path("/fake_sys")
HAS_JTOP = _lazy.is_available("jtop")

FAKE_NVPMODEL = """#!/bin/sh
# a minimal nvpmodel: the current mode, and the list of modes
case "$1" in
  -q) echo "NV Power Mode: MAXN"; echo 0 ;;
  -p) echo "NVPM VERB: Config file: /etc/nvpmodel.conf"
      echo "NVPM VERB: parsing done for /etc/nvpmodel.conf"
      echo "NVPM VERB: PM_CONFIG: DEFAULT=MAXN(0)"
      echo "NVPM VERB: POWER_MODEL: ID=0 NAME=MAXN"
      echo "NVPM VERB: POWER_MODEL: ID=1 NAME=10W" ;;
  -m) exit 0 ;;
esac
"""


# -- no server needed ----------------------------------------------------------------------------
def test_parse_power_of_jetson_stats_7_with_vdd_in_as_total():
    power = {
        "rail": {
            "VDD_CPU_GPU_CV": {
                "volt": 5000,
                "curr": 400,
                "power": 2000,
                "avg": 1900,
                "online": True,
            },
            "VDD_SOC": {"volt": 5000, "curr": 300, "power": 1500, "avg": 1500, "online": True},
            "OFFLINE": {"power": 9999, "avg": 9999, "online": False},
        },
        "tot": {"volt": 5000, "curr": 1600, "power": 8000, "avg": 6000, "name": "VDD_IN"},
    }
    total, rails, name = parse_jtop_power(power)
    assert total == 8.0  # 'power', never the running 'avg'
    assert name == "VDD_IN"
    assert rails == {"VDD_CPU_GPU_CV": 2.0, "VDD_SOC": 1.5, "VDD_IN": 8.0}


def test_parse_power_of_jetson_stats_7_agx_sum_and_4_0_tuple():
    total, rails, name = parse_jtop_power(
        {"rail": {"VDD_GPU_SOC": {"power": 6000, "avg": 1}}, "tot": {"power": 6000, "avg": 1}}
    )
    assert (total, rails, name) == (6.0, {"VDD_GPU_SOC": 6.0}, None)
    total, rails, name = parse_jtop_power(
        ({"cur": 4900, "avg": 4000}, {"VDD_SOC": {"cur": 1200, "avg": 1000}})
    )
    assert (total, rails, name) == (4.9, {"VDD_SOC": 1.2}, None)
    with pytest.raises(ValueError):
        parse_jtop_power({"rail": {}, "tot": {}})


def test_service_not_running_is_unavailable(tmp_path):
    sock = str(tmp_path / "absent.sock")
    ok, why = probe_jtop(socket_path=sock)
    assert not ok
    assert ("not running" in why) if HAS_JTOP else ("not installed" in why)
    with pytest.raises(PowerSourceError) as exc:
        open_power_source("jtop", jtop_socket=sock)
    assert exc.value.exit_code == 2 and "jtop power source is unavailable" in str(exc.value)


@pytest.mark.skipif(not HAS_JTOP, reason="jetson-stats is not installed (pip install jetson-stats)")
def test_client_failure_is_reported_from_the_child(tmp_path):
    sock = tmp_path / "stale.sock"
    sock.write_text("")  # a stale socket file and no server behind it
    src = JtopPowerSource(period_s=0.1, socket_path=str(sock), connect_timeout_s=30)
    with pytest.raises(PowerSourceError) as exc:
        src.start()
    assert "jtop.service did not answer" in str(exc.value)


# -- the real server -----------------------------------------------------------------------------
def _hardware(board: FakeBoard) -> dict[str, str]:
    return {
        "Model": board.spec.model,
        "Module": board.kind,
        "L4T": ".".join(board.spec.l4t),
        "Jetpack": "",
        "699-level Part Number": board.spec.compatible[1],
    }


@pytest.fixture
def jtop_server(tmp_path, request):
    """Start jetson-stats' server on a fake board; yields (board, socket path, process)."""
    kind = getattr(request, "param", "orin-nx-16gb")
    if not HAS_JTOP:
        pytest.skip("jetson-stats is not installed (pip install jetson-stats)")
    if os.geteuid() != 0:
        pytest.skip("the jtop server runs only as root (jetson-stats refuses otherwise)")
    if os.path.lexists(FAKE_SYS):
        pytest.skip("/fake_sys already exists (another jtop test?); not touching it")
    cleanups: list = []

    def cleanup() -> None:
        for fn in reversed(cleanups):
            with contextlib.suppress(Exception):
                fn()

    request.addfinalizer(cleanup)
    try:
        subprocess.run(["getent", "group", "jtop"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        if shutil.which("groupadd") is None:
            pytest.skip("no group 'jtop' and no groupadd to create it")
        subprocess.run(["groupadd", "jtop"], check=True, capture_output=True)
        cleanups.append(lambda: subprocess.run(["groupdel", "jtop"], capture_output=True))
    config = Path(sys.base_prefix) / "local" / "jtop"  # jetson-stats' config folder
    if not config.parent.exists():
        cleanups.append(lambda: shutil.rmtree(config.parent))
    elif not config.exists():
        cleanups.append(lambda: shutil.rmtree(config))

    board = FakeBoard(tmp_path / "board", kind)
    board.write(
        "/sys/stat",
        "cpu  100 0 100 1000 0 0 0 0 0 0\n"
        + "".join(f"cpu{i} 10 0 10 100 0 0 0 0 0 0\n" for i in range(board.spec.cpus)),
    )
    os.symlink(board.path("/sys"), FAKE_SYS)
    cleanups.append(FAKE_SYS.unlink)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "nvpmodel").write_text(FAKE_NVPMODEL)
    (bindir / "nvpmodel").chmod(0o755)

    sock = tmp_path / "jtop.sock"
    env = dict(os.environ, JTOP_TESTING="true", PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURES / "jtop_server.py"), str(sock), json.dumps(_hardware(board))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def stop_server() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        if sock.exists():
            sock.unlink()

    cleanups.append(stop_server)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        err = proc.stderr.read()[-800:]
        pytest.skip(f"the jtop server did not start: {err.strip() or 'no output'}")
    return board, str(sock), proc


@pytest.mark.root
@pytest.mark.slow
def test_jtop_source_on_orin_nx_follows_the_board(jtop_server):
    board, sock, _ = jtop_server
    board.set_rail("VDD_IN", mv=5000, ma=1000)  # 5 W
    board.set_rail("VDD_SOC", mv=5000, ma=300)
    ok, info = probe_jtop(socket_path=sock)
    assert ok, info
    start_method = multiprocessing.get_start_method(allow_none=True)
    had_jtop = "jtop" in sys.modules
    src, note = open_power_source("jtop", period_s=0.1, jtop_socket=sock)
    assert src is not None and note.startswith("jtop:")
    src.start()
    time.sleep(0.6)
    board.set_rail("VDD_IN", ma=3000)  # 15 W
    time.sleep(0.8)
    trace = src.stop()
    totals = [round(s.total_w, 3) for s in trace.samples]
    assert totals[0] == 5.0 and totals[-1] == 15.0
    assert set(totals) == {5.0, 15.0}
    assert trace.samples[-1].rails["VDD_SOC"] == pytest.approx(1.5)
    assert "VDD_IN" in trace.total_of
    assert trace.period_s_achieved is not None and 0.05 < trace.period_s_achieved < 0.3
    assert any(n.startswith("jetson-stats ") for n in trace.notes)
    s = summarize_power(trace, inferences=100, window_s=trace.duration_s)
    assert 5.0 < s["mean_w"] < 15.0
    # the client ran in a child: this process neither imported jtop nor had its start method set
    assert ("jtop" in sys.modules) == had_jtop
    assert multiprocessing.get_start_method(allow_none=True) == start_method


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("jtop_server", ["agx-orin-64gb"], indirect=True)
def test_jtop_source_on_agx_orin_sums_the_rails(jtop_server):
    board, sock, _ = jtop_server
    board.set_rail("VDD_GPU_SOC", mv=5000, ma=2000)  # 10 W
    board.set_rail("VDD_CPU_CV", mv=5000, ma=400)  # 2 W
    board.set_rail("VIN_SYS_5V0", mv=5000, ma=700)  # 3.5 W
    board.set_rail("VDDQ_VDD2_1V8AO", mv=1800, ma=500)  # 0.9 W
    src = JtopPowerSource(period_s=0.1, socket_path=sock)
    src.start()
    time.sleep(0.4)
    trace = src.stop()
    assert all(s.total_w == pytest.approx(16.4) for s in trace.samples)
    assert set(trace.samples[-1].rails) == {
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
        "VDDQ_VDD2_1V8AO",
    }
    assert "sum of the rails" in trace.total_of


@pytest.mark.root
@pytest.mark.slow
def test_server_stopping_mid_run_is_an_error(jtop_server):
    _, sock, proc = jtop_server
    src = JtopPowerSource(period_s=0.1, socket_path=sock)
    src.start()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    time.sleep(0.6)  # more than three intervals without data
    with pytest.raises(PowerSourceError) as exc:
        src.stop()
    assert "jtop stopped sampling" in str(exc.value)
