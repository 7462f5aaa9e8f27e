"""The device fingerprint read from fake AGX Orin 64GB / Orin NX 16GB / Orin Nano trees."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

from orinbench.telemetry import device  # noqa: E402

REQUIRED_KEYS = {
    "module",
    "jetpack",
    "l4t",
    "tensorrt",
    "cuda",
    "cudnn",
    "power_mode",
    "jetson_clocks",
    "gpu_freq_mhz",
    "emc_freq_mhz",
    "temperatures_c",
    "is_jetson",
}

# what each fake board's files say, and what must be read back from them
EXPECTED = {
    "agx-orin-64gb": {
        "module": "NVIDIA Jetson AGX Orin Developer Kit",
        "module_part": "p3701-0005",
        "module_name": "Jetson AGX Orin 64GB",
        "l4t": "35.4.1",
        "jetpack": "5.1.2",  # no nvidia-jetpack package: NVIDIA's table for L4T 35.4.1
        "tensorrt": "8.5.2",
        "cudnn": "8.6.0.166",
        "cuda": "11.4.298",
        "power_mode": "MAXN",
        "gpu_freq_mhz": 1300.5,
    },
    "orin-nx-16gb": {
        "module": "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
        "module_part": "p3767-0000",
        "module_name": "Jetson Orin NX 16GB",
        "l4t": "36.4.3",
        "jetpack": "6.2",  # from the nvidia-jetpack package 6.2+b77
        "tensorrt": "10.3.0.30",
        "cudnn": "9.3.0.75",
        "cuda": "12.6.68",
        "power_mode": "MAXN",
        "gpu_freq_mhz": 918.0,
    },
    "orin-nano-8gb": {
        "module": "NVIDIA Jetson Orin Nano Developer Kit",
        "module_part": "p3767-0005",
        "l4t": "36.3.0",
        "jetpack": "6.0",
        "tensorrt": "10.0.1.6",
        "cudnn": "9.0.0.312",
        "cuda": "12.2.140",
        "power_mode": "15W",
        "gpu_freq_mhz": 624.75,
    },
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_fingerprint_of_each_board(tmp_path, kind):
    FakeBoard(tmp_path, kind)
    fp = device.device_fingerprint(tmp_path)
    assert set(fp) >= REQUIRED_KEYS
    assert fp["is_jetson"] is True
    for key, value in EXPECTED[kind].items():
        assert fp[key] == value, key
    assert fp["power_mode_id"] == 0
    assert fp["jetson_clocks"] is True
    assert fp["clocks"] == {"gpu_locked": True, "cpu_locked": True, "emc_locked": True}
    assert fp["emc_freq_mhz"] == 3199.0
    # offline sensors (-256 C) are left out; names lose the "-thermal" suffix
    assert fp["temperatures_c"] == {"cpu": 45.0, "gpu": 44.0, "soc0": 43.0, "tj": 45.5}
    json.dumps(fp, allow_nan=False)


def test_fingerprint_follows_the_device_state(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.unlock_clocks()
    board.set_power_mode(2)
    board.set_temp("gpu-thermal", 61.25)
    fp = device.device_fingerprint(tmp_path)
    assert fp["jetson_clocks"] is False
    assert fp["clocks"] == {"gpu_locked": False, "cpu_locked": False, "emc_locked": False}
    assert (fp["gpu_min_freq_mhz"], fp["gpu_max_freq_mhz"]) == (306.0, 918.0)
    assert fp["gpu_freq_mhz"] == 306.0
    assert fp["emc_freq_mhz"] == 665.6
    assert (fp["power_mode"], fp["power_mode_id"]) == ("15W", 2)
    assert fp["temperatures_c"]["gpu"] == 61.25
    board.lock_clocks()
    assert device.device_fingerprint(tmp_path)["jetson_clocks"] is True


def test_without_debugfs_emc_is_unknown_and_clocks_judged_on_gpu_and_cpu(tmp_path):
    FakeBoard(tmp_path, "orin-nano-8gb")
    shutil.rmtree(tmp_path / "sys" / "kernel" / "debug")
    fp = device.device_fingerprint(tmp_path)
    assert fp["emc_freq_mhz"] is None
    assert fp["clocks"]["emc_locked"] is None
    assert fp["jetson_clocks"] is True


def test_cuda_version_json_wins_over_packages(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    board.write("/usr/local/cuda/version.json", json.dumps({"cuda": {"version": "12.6.85"}}))
    assert device.device_fingerprint(tmp_path)["cuda"] == "12.6.85"


def test_off_jetson_everything_unknown_is_none(tmp_path):
    fp = device.device_fingerprint(tmp_path)
    assert fp["is_jetson"] is False
    for key in REQUIRED_KEYS - {"is_jetson", "temperatures_c"}:
        assert fp[key] is None, key
    assert fp["temperatures_c"] == {}


def test_versions_from_headers_when_no_packages(tmp_path):
    inc = tmp_path / "usr" / "include" / "x86_64-linux-gnu"
    inc.mkdir(parents=True)
    (inc / "NvInferVersion.h").write_text(
        "#define NV_TENSORRT_MAJOR 10 //!< major\n#define NV_TENSORRT_MINOR 7\n"
        "#define NV_TENSORRT_PATCH 0\n#define NV_TENSORRT_BUILD 23\n"
    )
    (inc / "cudnn_version_v9.h").write_text(
        "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 5\n#define CUDNN_PATCHLEVEL 1\n"
    )
    (tmp_path / "usr" / "local" / "cuda").mkdir(parents=True)
    (tmp_path / "usr" / "local" / "cuda" / "version.txt").write_text("CUDA Version 10.2.300\n")
    assert device.tensorrt_version(tmp_path) == "10.7.0.23"
    assert device.cudnn_version(tmp_path) == "9.5.1"
    assert device.cuda_version(tmp_path) == "10.2.300"


def test_reading_versions_does_not_import_tensorrt(tmp_path):
    FakeBoard(tmp_path, "agx-orin-64gb")
    before = "tensorrt" in sys.modules
    device.device_fingerprint(tmp_path)
    assert ("tensorrt" in sys.modules) == before


def test_dpkg_status_keeps_only_installed_packages(tmp_path):
    FakeBoard(tmp_path, "agx-orin-64gb")
    pkgs = device.dpkg_versions(tmp_path)
    assert pkgs["libnvinfer8"] == "8.5.2-1+cuda11.4"
    assert "libnvinfer7" not in pkgs  # "deinstall ok config-files"


def test_jetpack_table_normalises_l4t_and_never_guesses():
    assert device.jetpack_for_l4t("35.1") == "5.0.2"
    assert device.jetpack_for_l4t("36.4.4") == "6.2.1"
    assert device.jetpack_for_l4t("99.9.9") is None
    assert device.jetpack_for_l4t(None) is None


def test_unknown_power_mode_is_none(tmp_path):
    board = FakeBoard(tmp_path, "orin-nx-16gb")
    (tmp_path / "var" / "lib" / "nvpmodel" / "status").unlink()
    assert device.read_power_mode(tmp_path) == (None, None)
    board.write("/var/lib/nvpmodel/status", "pmode:0007 fmode:quiet\n")  # id not in the conf
    assert device.read_power_mode(tmp_path) == (None, 7)


def test_device_tree_under_sys_firmware_also_works(tmp_path):
    board = FakeBoard(tmp_path, "orin-nano-8gb")
    shutil.move(tmp_path / "proc" / "device-tree", tmp_path / "dt")
    fw = tmp_path / "sys" / "firmware" / "devicetree"
    fw.mkdir(parents=True)
    shutil.move(tmp_path / "dt", fw / "base")
    (tmp_path / "etc" / "nv_tegra_release").unlink()
    assert device.is_jetson(tmp_path)
    assert device.device_fingerprint(board.root)["module_part"] == "p3767-0005"
