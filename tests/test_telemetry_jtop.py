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
from orinbench.telemetry.power import power_warnings, summarize_power  # noqa: E402
from orinbench.telemetry.powertrace import total_from_rails  # noqa: E402
from orinbench.telemetry.select import open_power_source  # noqa: E402
from orinbench.telemetry.sources.jtop import (  # noqa: E402
    TOO_OLD,
    JtopPowerSource,
    UnsupportedJtopError,
    _worker_cmd,
    _worker_env,
    fix_for,
    jetson_stats_supported,
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
JTOP_FORMATS = FIXTURES / "jtop"


def recorded(name: str):
    power = json.loads((JTOP_FORMATS / name).read_text())["power"]
    return tuple(power) if isinstance(power, list) else power  # 4.0/4.1 return a tuple


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
            "VDD_OFF": {"power": 9999, "avg": 9999, "online": False},
        },
        "tot": {"volt": 5000, "curr": 1600, "power": 8000, "avg": 6000, "name": "VDD_IN"},
    }
    p = parse_jtop_power(power)
    assert p.total_w == 8.0  # 'power', never the running 'avg'
    assert p.total_of.startswith("VDD_IN rail")
    assert p.rails == {"VDD_CPU_GPU_CV": 2.0, "VDD_SOC": 1.5, "VDD_IN": 8.0}
    assert p.dropped == ("VDD_OFF",)


def test_agx_orin_usb_c_pd_supply_is_not_a_rail_nor_in_the_total():
    # jetson-stats 4.2-7.2.0 list the UCSI USB-C PD supply as rail '1-00081' and sum it into
    # 'tot' (96.4 W here); the INA3221 rails sum to 31.4 W, as sysfs and tegrastats would say
    power = recorded("agx_orin_usb_pd_4.2-7.2.0.json")
    assert power["tot"]["power"] == 96396 and "name" not in power["tot"]
    p = parse_jtop_power(power)
    ina = ("VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0")
    assert set(p.rails) == set(ina)
    assert p.total_w == pytest.approx((2116 + 2366 + 21481 + 5433) / 1000)
    assert (p.total_w, p.total_of) == total_from_rails(p.rails)  # one total for every source
    assert p.dropped == ("1-00081",)


def test_power_supply_entries_are_told_apart_by_status_and_name():
    ina = {"power": 1000, "avg": 1000, "online": True, "volt": 5000, "curr": 200}
    power = {
        "rail": {
            "VDD_GPU_SOC": ina,
            # a charger-like supply: 'status' and 'online' files, named after its folder
            "BAT0": {**ina, "status": "Charging"},
            "ucsi-source-psy-1-00082": ina,
            "usb": ina,
        },
        "tot": {"power": 4000, "avg": 4000},
    }
    p = parse_jtop_power(power)
    assert p.rails == {"VDD_GPU_SOC": 1.0} and p.total_w == 1.0
    assert p.dropped == ("BAT0", "ucsi-source-psy-1-00082", "usb")
    with pytest.raises(ValueError, match="no INA3221 rails"):
        parse_jtop_power({"rail": {"usb": ina}, "tot": {"power": 1000}})
    with pytest.raises(ValueError, match="no INA3221 rails"):
        parse_jtop_power({"rail": {}, "tot": {}})
    with pytest.raises(ValueError, match="unexpected jtop power structure"):
        parse_jtop_power([1, 2])


def test_jetson_stats_4_0_is_refused_not_read_as_vin_sys_5v0():
    # 4.0's total is VIN_SYS_5V0 alone (5.4 W) and its rail names are rewritten
    power = recorded("agx_orin_4.0.0.json")
    assert power[0] == {"cur": 5432, "avg": 4379} and "GPU SOC" in power[1]
    with pytest.raises(UnsupportedJtopError, match=r"4\.0/4\.1"):
        parse_jtop_power(power)
    assert "jetson-stats>=4.2" in fix_for(TOO_OLD, "other")
    assert fix_for("jtop.service is not running", "other") == "other"


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("4.0.0", False),
        ("4.0.0rc1", False),
        ("4.1.5", False),
        ("4.2.0", True),
        ("4.2.12", True),
        ("7.2.2", True),
        ("10.0", True),
        ("unknown", False),
        ("", False),
    ],
)
def test_supported_jetson_stats_versions(version, ok):
    assert jetson_stats_supported(version) is ok


FAKE_OLD_JTOP = {
    "jtop/__init__.py": '__version__ = "4.1.5"\n\n\nclass jtop:  # never reached: refused first\n'
    "    def __init__(self, interval=1.0):\n"
    "        raise AssertionError('an unsupported jetson-stats must not be used')\n",
    "jtop/service.py": 'JTOP_PIPE = "/run/jtop.sock"\n',
}


def test_old_jetson_stats_is_refused_with_the_upgrade_as_fix(tmp_path, monkeypatch):
    # a stand-in for an installed jetson-stats 4.1.5: only its version string matters here
    for rel, text in FAKE_OLD_JTOP.items():
        (tmp_path / "pkgs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkgs" / rel).write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkgs"))  # for the child
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))  # found (never imported) by this process
    sock = tmp_path / "jtop.sock"
    sock.write_text("")
    ok, why = probe_jtop(socket_path=str(sock))
    assert not ok and "jetson-stats 4.1.5 is not supported" in why and TOO_OLD in why
    with pytest.raises(PowerSourceError) as exc:
        open_power_source("jtop", jtop_socket=str(sock))
    assert exc.value.exit_code == 2
    assert "jetson-stats>=4.2" in exc.value.fix and "restart jtop.service" in exc.value.fix
    src = JtopPowerSource(period_s=0.1, socket_path=str(sock), connect_timeout_s=30)
    with pytest.raises(PowerSourceError) as exc:
        src.start()
    assert "jetson-stats>=4.2" in str(exc.value)


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
    src, note = open_power_source("jtop", period_s=0.1, jtop_socket=sock, root=str(board.root))
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
    # the service reads every 0.1 s, but the INA3221 refreshes every 0.43 s: repeats are dropped
    assert (trace.sensor_update_s, trace.resolution_s) == (0.43, 0.43)
    assert trace.repeats_dropped > 0
    assert trace.period_s_achieved is not None and 0.1 < trace.period_s_achieved < 0.6
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
    src = JtopPowerSource(period_s=0.1, socket_path=sock, root=board.root)
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
    # the same phrase as the sysfs source on the same board
    assert trace.total_of.startswith("sum of rails VDDQ_VDD2_1V8AO+VDD_CPU_CV+VDD_GPU_SOC+VIN_SYS")
    assert trace.total_of.endswith(" via jtop")
    assert any("jtop's own 'tot' is not used" in n for n in trace.notes)


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("jtop_server", ["agx-orin-64gb"], indirect=True)
def test_jtop_source_with_a_usb_c_pd_supply_on_agx_orin(jtop_server):
    # the UCSI folder of the AGX Orin devkit's USB-C PD input (name from jetson_stats#428);
    # the installed jetson-stats (7.2.2) already skips it, 4.2-7.2.0 added it to 'tot' (the
    # recorded-format test above covers those); either way orinbench sums only the INA3221 rails
    board, sock, _ = jtop_server
    psy = board.path("/sys/class/power_supply/ucsi-source-psy-1-00081")
    for name, value in {
        "type": "USB",
        "online": "1",
        "voltage_now": "20000000",
        "current_now": "3250000",
        "current_max": "3250000",
    }.items():
        board.write(psy / name, value + "\n")
    for rail in board.rails:
        board.set_rail(rail, mv=5000, ma=200)  # 1 W each
    src = JtopPowerSource(period_s=0.1, socket_path=sock, root=board.root)
    src.start()
    time.sleep(0.3)
    trace = src.stop()
    assert all(s.total_w == pytest.approx(4.0) for s in trace.samples)
    assert not any("1-00081" in r for s in trace.samples for r in s.rails)


@pytest.mark.root
@pytest.mark.slow
def test_a_slower_shared_service_does_not_stop_the_run(jtop_server):
    # another client connected first and set the service's interval to 0.5 s; orinbench asks for
    # 0.1 s, so jtop's ok() would give up after 0.3 s without data although the service is fine
    board, sock, _ = jtop_server
    board.set_rail("VDD_IN", mv=5000, ma=1000)  # 5 W
    other = subprocess.Popen(
        _worker_cmd(0.5, sock, probe=False),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_worker_env(),
    )
    try:
        hello = json.loads(other.stdout.readline())
        assert hello["hello"]["interval"] == 0.5
        src = JtopPowerSource(period_s=0.1, socket_path=sock, root=board.root)
        src.start()
        time.sleep(1.0)
        board.set_rail("VDD_IN", ma=2000)  # 10 W
        time.sleep(1.0)
        trace = src.stop()
    finally:
        other.stdin.close()
        other.wait(timeout=20)
        other.stdout.close()
    assert src.server_interval_s == 0.5
    assert any("samples every 0.5 s" in n for n in trace.notes)
    assert {round(s.total_w, 3) for s in trace.samples} == {5.0, 10.0}
    assert trace.resolution_s == 0.5  # max(service 0.5 s, sensor 0.43 s)
    assert trace.period_s_achieved is not None and 0.4 < trace.period_s_achieved < 0.7
    s = summarize_power(trace, inferences=10, window_s=trace.duration_s)
    assert not any("sampled every" in w.message for w in power_warnings(s))


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
