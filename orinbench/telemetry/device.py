"""The device fingerprint stored in every result (``Environment.device``), read from the device.

On a Jetson: the module (device-tree model and part number), the L4T release and JetPack, the
TensorRT, CUDA and cuDNN versions, the nvpmodel power mode by name, whether jetson_clocks has
locked the clocks, the GPU and EMC frequencies and the temperatures. Elsewhere: the GPU, driver and
CUDA version through NVML where it is installed. Anything that cannot be read is None: a fingerprint
never guesses, because the gate uses it to refuse comparing unlike with unlike.

Every reader takes ``root`` (default ``/``) so that tests can use fake sysfs / device-tree trees.
With a root other than ``/``, no commands are run and NVML is not asked.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._fs import list_dir, read_int, read_text, under

#: JetPack release for each L4T (Jetson Linux) release of the Orin era, from NVIDIA's published
#: table, "JetPack SDK archive": https://developer.nvidia.com/embedded/jetpack-archive
#: (each JetPack entry names its Jetson Linux release). Unknown releases map to None.
JETPACK_BY_L4T: dict[str, str] = {
    "34.1.0": "5.0 DP",
    "34.1.1": "5.0.1 DP",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
}

#: Orin module part numbers (the "p3701-0005" in /proc/device-tree/compatible) and their names,
#: from NVIDIA's Jetson module data sheets / Jetson Linux "Jetson Modules and Configurations".
ORIN_MODULES: dict[str, str] = {
    "p3701-0000": "Jetson AGX Orin 32GB",
    "p3701-0004": "Jetson AGX Orin 32GB",
    "p3701-0005": "Jetson AGX Orin 64GB",
    "p3701-0008": "Jetson AGX Orin Industrial",
    "p3767-0000": "Jetson Orin NX 16GB",
    "p3767-0001": "Jetson Orin NX 8GB",
    "p3767-0003": "Jetson Orin Nano 8GB",
    "p3767-0004": "Jetson Orin Nano 4GB",
    "p3767-0005": "Jetson Orin Nano 8GB (developer kit module)",
}

_GPU_OF_NAMES = {"gpu", "ga10b", "gv11b", "gp10b", "gb10b"}
_PART_RE = re.compile(r"^nvidia,(p\d{4}-\d{4})$")
_OFFLINE_C = -100.0
#: how long a version/mode command may take before it is given up
_CMD_TIMEOUT_S = 5.0


def is_real_root(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` is the machine's own ``/`` (commands and NVML may be used)."""
    return os.path.realpath(str(root) or "/") == "/"


# -- identity --------------------------------------------------------------------------------------
def _device_tree(root: str | os.PathLike[str], name: str) -> str | None:
    for base in ("/proc/device-tree", "/sys/firmware/devicetree/base"):
        text = read_text(under(root, f"{base}/{name}"))
        if text:
            return text
    return None


def device_tree_model(root: str | os.PathLike[str] = "/") -> str | None:
    """The device-tree ``model`` string, e.g. "NVIDIA Jetson AGX Orin Developer Kit"."""
    return _device_tree(root, "model")


def device_tree_compatible(root: str | os.PathLike[str] = "/") -> list[str]:
    """The device-tree ``compatible`` entries (NUL-separated in the file)."""
    text = _device_tree(root, "compatible") or ""
    return [c.strip() for c in text.splitlines() if c.strip()]


def is_jetson(root: str | os.PathLike[str] = "/") -> bool:
    """True on an NVIDIA Jetson (Tegra device tree or an L4T release file)."""
    if under(root, "/etc/nv_tegra_release").is_file():
        return True
    if any(c.startswith("nvidia,tegra") for c in device_tree_compatible(root)):
        return True
    return "jetson" in (device_tree_model(root) or "").lower()


def module_part(root: str | os.PathLike[str] = "/") -> str | None:
    """The module's part number (``p3701-0005``) from the device-tree compatible list."""
    parts = [m.group(1) for c in device_tree_compatible(root) if (m := _PART_RE.match(c))]
    for p in parts:
        if p in ORIN_MODULES:
            return p
    return parts[0] if parts else None


# -- software versions ------------------------------------------------------------
def read_l4t(root: str | os.PathLike[str] = "/") -> str | None:
    """The L4T release as "36.4.3", from /etc/nv_tegra_release or the nvidia-l4t-core package."""
    text = read_text(under(root, "/etc/nv_tegra_release"))
    if text:
        m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
        if m:
            return _three(f"{m.group(1)}.{m.group(2).rstrip('.')}")
    core = dpkg_versions(root).get("nvidia-l4t-core")
    return _three(_upstream(core)) if core else None


def _three(version: str) -> str:
    parts = [p for p in version.split(".") if p != ""]
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


def _upstream(version: str) -> str:
    """Debian version -> upstream part: "1:8.5.2-1+cuda11.4" -> "8.5.2"."""
    v = version.split(":", 1)[-1]
    return re.split(r"[-+~]", v, maxsplit=1)[0]


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """JetPack of an L4T release per NVIDIA's table (:data:`JETPACK_BY_L4T`), else None."""
    return JETPACK_BY_L4T.get(_three(l4t)) if l4t else None


def dpkg_versions(root: str | os.PathLike[str] = "/") -> dict[str, str]:
    """Installed Debian packages and their versions, from /var/lib/dpkg/status under ``root``."""
    path = under(root, "/var/lib/dpkg/status")
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [*fh, "\n"]
    except OSError:
        return out
    name = version = status = None
    for line in lines:
        if not line.strip():
            if name and version and status and status.split()[-1] == "installed":
                out[name] = version
            name = version = status = None
        elif line.startswith("Package:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()
        elif line.startswith("Status:"):
            status = line.split(":", 1)[1].strip()
    return out


def _header_version(paths: list[Path], prefix: str, fields: tuple[str, ...]) -> str | None:
    for p in paths:
        text = read_text(p)
        if not text:
            continue
        nums = []
        for f in fields:
            m = re.search(rf"#define\s+{prefix}{f}\s+(\d+)", text)
            if not m:
                break
            nums.append(m.group(1))
        if len(nums) >= 3:
            return ".".join(nums)
    return None


def _metadata_version(*dists: str) -> str | None:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorrt_version(
    root: str | os.PathLike[str] = "/", *, packages: dict[str, str] | None = None
) -> str | None:
    """TensorRT version without importing tensorrt (unless it is already imported)."""
    real = is_real_root(root)
    if real:
        mod = sys.modules.get("tensorrt")
        if mod is not None and getattr(mod, "__version__", None):
            return str(mod.__version__)
        found = _metadata_version("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
        if found:
            return found
    pkgs = packages if packages is not None else dpkg_versions(root)
    for name in ("tensorrt", "libnvinfer10", "libnvinfer8", "libnvinfer7"):
        if name in pkgs:
            return _upstream(pkgs[name])
    headers = [
        under(root, f"/usr/include/{d}NvInferVersion.h")
        for d in ("aarch64-linux-gnu/", "x86_64-linux-gnu/", "")
    ]
    headers.append(under(root, "/usr/local/tensorrt/include/NvInferVersion.h"))
    return _header_version(headers, "NV_TENSORRT_", ("MAJOR", "MINOR", "PATCH", "BUILD"))


def cuda_version(
    root: str | os.PathLike[str] = "/", *, packages: dict[str, str] | None = None
) -> str | None:
    """The CUDA toolkit version from /usr/local/cuda/version.json (.txt) or the cudart package."""
    text = read_text(under(root, "/usr/local/cuda/version.json"))
    if text:
        try:
            v = json.loads(text).get("cuda", {}).get("version")
            if v:
                return str(v)
        except (ValueError, AttributeError):
            pass
    text = read_text(under(root, "/usr/local/cuda/version.txt"))
    if text:
        m = re.search(r"CUDA Version\s+([\d.]+)", text)
        if m:
            return m.group(1)
    pkgs = packages if packages is not None else dpkg_versions(root)
    cudart = sorted(
        (_upstream(v) for k, v in pkgs.items() if re.fullmatch(r"cuda-cudart-\d+-\d+", k)),
        key=lambda s: [int(x) for x in re.findall(r"\d+", s)],
    )
    return cudart[-1] if cudart else None


def cudnn_version(
    root: str | os.PathLike[str] = "/", *, packages: dict[str, str] | None = None
) -> str | None:
    """The cuDNN version from its Debian package or its version header."""
    pkgs = packages if packages is not None else dpkg_versions(root)
    found = sorted(
        (_upstream(v) for k, v in pkgs.items() if re.fullmatch(r"libcudnn\d+(-cuda-\d+)?", k)),
        key=lambda s: [int(x) for x in re.findall(r"\d+", s)],
    )
    if found:
        return found[-1]
    headers: list[Path] = []
    for d in (
        "/usr/include",
        "/usr/include/aarch64-linux-gnu",
        "/usr/include/x86_64-linux-gnu",
        "/usr/local/cuda/include",
    ):
        base = under(root, d)
        headers += [
            base / n for n in list_dir(base) if re.fullmatch(r"cudnn_version(_v\d+)?\.h", n)
        ]
    return _header_version(headers, "CUDNN_", ("MAJOR", "MINOR", "PATCHLEVEL"))


# -- power mode and clocks -------------------------------------------------------------------------
def nvpmodel_modes(root: str | os.PathLike[str] = "/") -> dict[int, str]:
    """Power modes defined in /etc/nvpmodel.conf: ``{id: name}``."""
    text = read_text(under(root, "/etc/nvpmodel.conf")) or ""
    return {int(i): n for i, n in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", text)}


def read_power_mode(root: str | os.PathLike[str] = "/") -> tuple[str | None, int | None]:
    """The current nvpmodel mode as (name, id), read from the device; (None, None) if unknown.

    On the real root ``nvpmodel -q`` is asked first; otherwise (or if that fails) the mode id comes
    from /var/lib/nvpmodel/status ("pmode:0002 ...") and its name from /etc/nvpmodel.conf.
    """
    if is_real_root(root):
        exe = shutil.which("nvpmodel")
        if exe:
            try:
                out = subprocess.run(
                    [exe, "-q"],
                    capture_output=True,
                    text=True,
                    timeout=_CMD_TIMEOUT_S,
                    check=False,
                    stdin=subprocess.DEVNULL,
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            m = re.search(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)", out)
            if m:
                return m.group(1), int(m.group(2))
    status = read_text(under(root, "/var/lib/nvpmodel/status")) or ""
    m = re.search(r"pmode:(\d+)", status)
    if not m:
        return None, None
    mode_id = int(m.group(1))
    return nvpmodel_modes(root).get(mode_id), mode_id


@dataclass(frozen=True)
class GpuClock:
    """The integrated GPU's devfreq state, in MHz."""

    cur_mhz: float | None
    min_mhz: float | None
    max_mhz: float | None
    available_max_mhz: float | None
    path: str

    @property
    def locked(self) -> bool | None:
        """Min equals max (what jetson_clocks sets); None if unreadable."""
        if self.min_mhz is None or self.max_mhz is None:
            return None
        return self.min_mhz == self.max_mhz


def _mhz(hz: int | None) -> float | None:
    return round(hz / 1e6, 3) if hz is not None else None


def find_gpu_devfreq(root: str | os.PathLike[str] = "/") -> Path | None:
    """The integrated GPU's folder under /sys/class/devfreq (e.g. 17000000.gpu or .ga10b)."""
    base = under(root, "/sys/class/devfreq")
    for item in list_dir(base):
        path = base / item
        of_name = (read_text(path / "device" / "of_node" / "name") or "").lower()
        suffix = item.rsplit(".", 1)[-1].lower()
        if of_name in _GPU_OF_NAMES or suffix in _GPU_OF_NAMES:
            return path
    return None


def read_gpu_clock(root: str | os.PathLike[str] = "/") -> GpuClock | None:
    """The integrated GPU's current, min and max frequency, or None without a devfreq GPU."""
    path = find_gpu_devfreq(root)
    if path is None:
        return None
    avail = read_text(path / "available_frequencies")
    avail_max = None
    if avail:
        nums = [int(x) for x in avail.split() if x.isdigit()]
        avail_max = _mhz(max(nums)) if nums else None
    return GpuClock(
        cur_mhz=_mhz(read_int(path / "cur_freq")),
        min_mhz=_mhz(read_int(path / "min_freq")),
        max_mhz=_mhz(read_int(path / "max_freq")),
        available_max_mhz=avail_max,
        path=str(path),
    )


def emc_clock_dir(root: str | os.PathLike[str]) -> Path | None:
    """The EMC clock's debugfs folder (bpmp on Orin), or None where debugfs is unreadable."""
    for d in ("/sys/kernel/debug/bpmp/debug/clk/emc", "/sys/kernel/debug/clk/emc"):
        p = under(root, d)
        if p.is_dir():
            return p
    return None


def read_emc_mhz(root: str | os.PathLike[str] = "/") -> float | None:
    """The EMC (memory) clock in MHz from debugfs (readable as root only), else None."""
    d = emc_clock_dir(root)
    if d is None:
        return None
    return _mhz(read_int(d / "rate")) or _mhz(read_int(d / "clk_rate"))


def read_emc_locked(root: str | os.PathLike[str] = "/") -> bool | None:
    """Whether the EMC clock is pinned (bpmp ``mrq_rate_locked``, or rate == max_rate)."""
    d = emc_clock_dir(root)
    if d is None:
        return None
    locked = read_int(d / "mrq_rate_locked")
    if locked is not None:
        return locked != 0
    rate, top = read_int(d / "rate"), read_int(d / "max_rate")
    if rate is None or top is None:
        return None
    return rate == top


def read_cpu_locked(root: str | os.PathLike[str] = "/") -> bool | None:
    """Whether every online CPU has scaling_min_freq == scaling_max_freq (jetson_clocks)."""
    base = under(root, "/sys/devices/system/cpu")
    seen = False
    for item in list_dir(base):
        if not re.fullmatch(r"cpu\d+", item):
            continue
        if read_int(base / item / "online") == 0:
            continue
        lo = read_int(base / item / "cpufreq" / "scaling_min_freq")
        hi = read_int(base / item / "cpufreq" / "scaling_max_freq")
        if lo is None or hi is None:
            continue
        seen = True
        if lo != hi:
            return False
    return True if seen else None


def jetson_clocks_state(root: str | os.PathLike[str] = "/") -> tuple[bool | None, dict[str, Any]]:
    """(all clocks locked as jetson_clocks leaves them, the per-clock details).

    jetson_clocks pins the GPU's devfreq min to its max, every CPU's scaling min to its max and the
    EMC clock; this reads those settings back (no root needed except for EMC, which is skipped
    when debugfs is unreadable). None when the GPU's devfreq is not there (not a Jetson).
    """
    gpu = read_gpu_clock(root)
    details: dict[str, Any] = {
        "gpu_locked": gpu.locked if gpu else None,
        "cpu_locked": read_cpu_locked(root),
        "emc_locked": read_emc_locked(root),
    }
    if details["gpu_locked"] is None:
        return None, details
    parts = [v for v in details.values() if v is not None]
    return all(parts), details


def read_temperatures(root: str | os.PathLike[str] = "/") -> dict[str, float]:
    """Thermal zones in °C by name ("cpu", "gpu", "tj", ...), offline sensors left out."""
    base = under(root, "/sys/class/thermal")
    out: dict[str, float] = {}
    for item in list_dir(base):
        if not item.startswith("thermal_zone"):
            continue
        name = read_text(base / item / "type")
        milli = read_int(base / item / "temp")
        if not name or milli is None or milli / 1000.0 <= _OFFLINE_C:
            continue
        key = name.removesuffix("-thermal").removesuffix("_thermal")
        out[key] = round(milli / 1000.0, 3)
    return out


# -- NVML (not a Jetson) ------------------------------------------------------------
def nvml_facts(index: int = 0) -> dict[str, Any]:
    """GPU name, driver, CUDA driver version, clocks and temperature via NVML; {} if unavailable."""
    from .. import _lazy

    if not _lazy.is_available("pynvml"):
        return {}
    nv = _lazy.pynvml()
    try:
        nv.nvmlInit()
    except Exception:  # no driver / no GPU: the fingerprint says None, never guesses
        return {}
    out: dict[str, Any] = {}
    try:

        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        out["driver"] = text(nv.nvmlSystemGetDriverVersion())
        cv = int(nv.nvmlSystemGetCudaDriverVersion())
        out["cuda_driver"] = f"{cv // 1000}.{(cv % 1000) // 10}"
        if nv.nvmlDeviceGetCount() > index:
            h = nv.nvmlDeviceGetHandleByIndex(index)
            out["gpu"] = text(nv.nvmlDeviceGetName(h))
            for key, call in (
                ("gpu_freq_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_GRAPHICS)),
                (
                    "gpu_max_freq_mhz",
                    lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_GRAPHICS),
                ),
                ("emc_freq_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
                ("temperature_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            ):
                try:
                    out[key] = float(call())
                except nv.NVMLError:
                    out[key] = None
    except nv.NVMLError:
        pass
    finally:
        try:
            nv.nvmlShutdown()
        except nv.NVMLError:
            pass
    return out


# -- the fingerprint -------------------------------------------------------------------------------
def device_fingerprint(root: str | os.PathLike[str] = "/") -> dict[str, Any]:
    """The fingerprint for ``Environment.device`` (see docs/telemetry.md for each key).

    Keys always present: ``is_jetson``, ``module``, ``module_part``, ``module_name``, ``l4t``,
    ``jetpack``, ``tensorrt``, ``cuda``, ``cudnn``, ``power_mode``, ``power_mode_id``,
    ``jetson_clocks``, ``clocks``, ``gpu_freq_mhz``, ``gpu_min_freq_mhz``, ``gpu_max_freq_mhz``,
    ``emc_freq_mhz``, ``temperatures_c``, ``gpu``, ``driver``, ``cuda_driver``. Unknown values are
    None.
    """
    jetson = is_jetson(root)
    pkgs = dpkg_versions(root)
    fp: dict[str, Any] = {
        "is_jetson": jetson,
        "module": None,
        "module_part": None,
        "module_name": None,
        "l4t": None,
        "jetpack": None,
        "tensorrt": tensorrt_version(root, packages=pkgs),
        "cuda": cuda_version(root, packages=pkgs),
        "cudnn": cudnn_version(root, packages=pkgs),
        "power_mode": None,
        "power_mode_id": None,
        "jetson_clocks": None,
        "clocks": {"gpu_locked": None, "cpu_locked": None, "emc_locked": None},
        "gpu_freq_mhz": None,
        "gpu_min_freq_mhz": None,
        "gpu_max_freq_mhz": None,
        "emc_freq_mhz": None,
        "temperatures_c": read_temperatures(root),
        "gpu": None,
        "driver": None,
        "cuda_driver": None,
    }
    if jetson:
        part = module_part(root)
        l4t = read_l4t(root)
        jp_pkg = pkgs.get("nvidia-jetpack")
        mode, mode_id = read_power_mode(root)
        locked, clocks = jetson_clocks_state(root)
        gpu = read_gpu_clock(root)
        fp.update(
            module=device_tree_model(root),
            module_part=part,
            module_name=ORIN_MODULES.get(part or ""),
            l4t=l4t,
            # the installed JetPack meta-package says it directly; else NVIDIA's L4T table
            jetpack=_upstream(jp_pkg) if jp_pkg else jetpack_for_l4t(l4t),
            power_mode=mode,
            power_mode_id=mode_id,
            jetson_clocks=locked,
            clocks=clocks,
            gpu_freq_mhz=gpu.cur_mhz if gpu else None,
            gpu_min_freq_mhz=gpu.min_mhz if gpu else None,
            gpu_max_freq_mhz=gpu.max_mhz if gpu else None,
            emc_freq_mhz=read_emc_mhz(root),
        )
    elif is_real_root(root):
        facts = nvml_facts()
        if facts:
            fp.update(
                module=facts.get("gpu"),
                gpu=facts.get("gpu"),
                driver=facts.get("driver"),
                cuda_driver=facts.get("cuda_driver"),
                gpu_freq_mhz=facts.get("gpu_freq_mhz"),
                gpu_max_freq_mhz=facts.get("gpu_max_freq_mhz"),
                emc_freq_mhz=facts.get("emc_freq_mhz"),
            )
            if facts.get("temperature_c") is not None:
                fp["temperatures_c"] = {**fp["temperatures_c"], "gpu": facts["temperature_c"]}
    return fp
