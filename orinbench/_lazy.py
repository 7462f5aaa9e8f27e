"""The only place that imports the heavy or optional runtimes.

TensorRT, pycuda, jtop (jetson-stats), onnxruntime, NVML and matplotlib are imported here, on
first use, never at ``import orinbench``. A missing one raises :class:`DependencyMissingError` whose
message names the package to install, the JetPack one where the library comes from JetPack.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import DependencyMissingError

#: module name -> (what it is for, how to install it)
_HINTS: dict[str, tuple[str, str]] = {
    "tensorrt": (
        "TensorRT",
        "on a Jetson install JetPack's 'python3-libnvinfer' (sudo apt install nvidia-tensorrt "
        "python3-libnvinfer) and use the system Python or a venv made with --system-site-packages; "
        "on x86 use NVIDIA's TensorRT container (docker/Dockerfile.x86)",
    ),
    "pycuda": (
        "pycuda (CUDA memory, streams and events for the TensorRT backend)",
        "pip install 'orinbench[jetson]' (builds pycuda against JetPack's CUDA: "
        "export PATH=/usr/local/cuda/bin:$PATH first)",
    ),
    "jtop": (
        "jtop from jetson-stats (power and clocks on Jetson)",
        "sudo pip3 install -U jetson-stats, then reboot or start jtop.service; "
        "or use --power sysfs",
    ),
    "onnxruntime": (
        "ONNX Runtime",
        "pip install 'orinbench[ort]' (on Jetson, NVIDIA's onnxruntime-gpu wheel for your JetPack)",
    ),
    "onnxruntime.quantization": (
        "ONNX Runtime's quantization tools",
        "pip install 'orinbench[ort]'",
    ),
    "pynvml": ("NVML power readings (nvidia-ml-py)", "pip install nvidia-ml-py"),
    "matplotlib": ("plots for the HTML report", "pip install 'orinbench[report]'"),
}


def is_available(module: str) -> bool:
    """True if ``module`` could be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str) -> ModuleType:
    """Import ``module`` or raise a one-line error telling how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what, fix = _HINTS.get(module, (module, f"pip install {module.split('.')[0]}"))
        raise DependencyMissingError(
            f"{what} is not installed", why=f"import {module} failed ({exc})", fix=fix
        ) from exc


def tensorrt() -> ModuleType:
    return require("tensorrt")


def pycuda_driver() -> ModuleType:
    return require("pycuda.driver") if is_available("pycuda") else require("pycuda")


def onnxruntime() -> ModuleType:
    return require("onnxruntime")


def jtop() -> ModuleType:
    return require("jtop")


def pynvml() -> ModuleType:
    return require("pynvml")


def matplotlib() -> ModuleType:
    return require("matplotlib")
