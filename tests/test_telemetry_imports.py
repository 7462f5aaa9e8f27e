"""Telemetry imports no optional runtime (jtop, NVML, TensorRT) and never sets the start method."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import multiprocessing, sys
import orinbench.telemetry
import orinbench.telemetry.sources.jtop, orinbench.telemetry.sources.nvml
import orinbench.telemetry.sources.sysfs, orinbench.telemetry.sources.tegrastats
import orinbench.cli.system_cmd
orinbench.telemetry.device_fingerprint(sys.argv[1])
print(sorted(m for m in ("jtop", "pynvml", "tensorrt", "pycuda") if m in sys.modules))
orinbench.telemetry.open_power_source("auto", root=sys.argv[1])  # may ask NVML, never jtop
print(sorted(m for m in ("jtop", "tensorrt", "pycuda") if m in sys.modules))
print(multiprocessing.get_start_method(allow_none=True))
"""


def test_no_optional_runtime_is_imported(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out == ["[]", "[]", "None"]
