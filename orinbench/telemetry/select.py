"""Choosing a power source: ``--power auto|jtop|sysfs|tegrastats|nvml|none``.

``auto`` on a Jetson takes jtop if its service answers, else the INA3221 files in sysfs, else
tegrastats; elsewhere NVML; and says which it took and why the others were passed over. With none
available it returns no source and a note saying power is not measured. An explicitly named source
that is unavailable is an error (:class:`PowerSourceError`, exit 2): never a silent zero.
"""

from __future__ import annotations

import os

from ..errors import PowerSourceError, UsageError
from .device import is_jetson
from .powertrace import PowerSource

POWER_SOURCES: tuple[str, ...] = ("auto", "jtop", "sysfs", "tegrastats", "nvml", "none")
#: sample period of each source when none is given (seconds)
DEFAULT_PERIOD_S: dict[str, float] = {"jtop": 0.1, "sysfs": 0.05, "tegrastats": 0.1, "nvml": 0.02}


def _open_one(
    name: str,
    *,
    period_s: float | None,
    root: str | os.PathLike[str],
    jtop_socket: str | None,
    tegrastats_bin: str | None,
    nvml_index: int,
) -> PowerSource:
    period = period_s if period_s is not None else DEFAULT_PERIOD_S[name]
    if name == "sysfs":
        from .sources.sysfs import SysfsPowerSource

        return SysfsPowerSource(period_s=period, root=root)
    if name == "jtop":
        from .sources.jtop import JtopPowerSource, fix_for, probe_jtop

        src = JtopPowerSource(period_s=period, socket_path=jtop_socket, root=root)
        ok, why = probe_jtop(socket_path=jtop_socket, period_s=period)
        if not ok:
            raise PowerSourceError(
                "jtop power source is unavailable",
                why=why,
                fix=fix_for(
                    why,
                    "install jetson-stats and start jtop.service (sudo systemctl restart "
                    "jtop.service), or choose --power sysfs",
                ),
            )
        return src
    if name == "tegrastats":
        from .sources.tegrastats import TegrastatsPowerSource

        return TegrastatsPowerSource(period_s=period, binary=tegrastats_bin, root=root)
    if name == "nvml":
        from .sources.nvml import NvmlPowerSource

        return NvmlPowerSource(period_s=period, index=nvml_index)
    raise UsageError(
        f"unknown power source '{name}'", fix=f"choose one of {', '.join(POWER_SOURCES)}"
    )


def open_power_source(
    name: str = "auto",
    *,
    period_s: float | None = None,
    root: str | os.PathLike[str] = "/",
    jtop_socket: str | None = None,
    tegrastats_bin: str | None = None,
    nvml_index: int = 0,
) -> tuple[PowerSource | None, str]:
    """Open a power source; returns (source or None, a one-line note of what was picked and why).

    ``period_s`` None takes each source's default (:data:`DEFAULT_PERIOD_S`). ``root`` locates the
    sysfs / device-tree tree (tests pass a fake one). ``jtop_socket`` and ``tegrastats_bin``
    override where the jtop service listens and which tegrastats runs.
    Raises UsageError for an unknown name or a bad period, PowerSourceError when an explicitly
    named source is unavailable.
    """
    key = (name or "auto").strip().lower()
    if key not in POWER_SOURCES:
        raise UsageError(
            f"unknown power source '{name}'", fix=f"choose one of {', '.join(POWER_SOURCES)}"
        )
    if period_s is not None and not period_s > 0:
        raise UsageError(
            f"power sample period must be > 0 seconds, not {period_s}",
            fix="pass e.g. --power-period 0.05",
        )
    opts = {
        "period_s": period_s,
        "root": root,
        "jtop_socket": jtop_socket,
        "tegrastats_bin": tegrastats_bin,
        "nvml_index": nvml_index,
    }
    if key == "none":
        return None, "none (power not measured: --power none)"
    if key != "auto":
        src = _open_one(key, **opts)
        return src, f"{key}: {src.describe()}"

    passed: list[str] = []
    if is_jetson(root):
        candidates: tuple[str, ...] = ("jtop", "sysfs", "tegrastats")
    else:
        candidates = ("nvml",)
        passed.append("not a Jetson, so not jtop/sysfs/tegrastats")
    for cand in candidates:
        try:
            src = _open_one(cand, **opts)
        except PowerSourceError as exc:
            passed.append(f"{cand}: {exc.why or exc.what}")
            continue
        note = f"{cand} (auto): {src.describe()}"
        if passed:
            note += f" [passed over: {'; '.join(passed)}]"
        return src, note
    return None, f"none (auto found no power source, power is not measured: {'; '.join(passed)})"
