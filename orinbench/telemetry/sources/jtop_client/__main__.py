"""The jtop client in its own interpreter: ``python -m orinbench.telemetry.sources.jtop_client``.

Arguments: ``--interval SECONDS`` (the interval asked of jtop.service), ``--socket PATH`` (a service
socket other than /run/jtop.sock), ``--probe`` (connect, report, exit).

It writes one JSON object per line on stdout: ``{"hello": {"interval", "requested", "version"}}``
once connected, then ``{"t": monotonic seconds, "total_w", "rails_w", "total_of", "dropped"}`` per
new reading of the service, or ``{"error": "..."}`` before exiting with status 3. It exits 0 when
its stdin closes (the parent's way to stop it). Only this process imports jtop (see
``sources/jtop.py`` for why).

The service's interval is set by its first client. ``jetson.ok()`` waits three times the interval
*this* client asked for, and gives up for good on the first timeout. When the service runs slower
than asked (another client connected first), the client therefore reconnects asking for the
service's own interval, so a healthy but slower service never ends the run. Checked against
jetson-stats 7.2 on a simulated board (and its 4.2.x source), never on a real Orin.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

EXIT_ERROR = 3


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _args(argv: Sequence[str]) -> tuple[float, str | None, bool]:
    interval, socket, probe = 1.0, None, False
    it = iter(argv)
    for arg in it:
        if arg == "--interval":
            interval = float(next(it))
        elif arg == "--socket":
            socket = next(it)
        elif arg == "--probe":
            probe = True
        else:
            raise SystemExit(f"unknown argument {arg!r}")
    return interval, socket, probe


def _watch_stdin(stop: threading.Event) -> None:
    try:
        while sys.stdin.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def main(argv: Sequence[str] | None = None) -> int:
    interval, socket, probe = _args(sys.argv[1:] if argv is None else argv)
    from orinbench import _lazy
    from orinbench.errors import DependencyMissingError

    try:
        jtop_pkg = _lazy.jtop()
        service = _lazy.require("jtop.service")
    except DependencyMissingError as exc:
        _emit({"error": str(exc)})
        return EXIT_ERROR
    if socket:
        # the client reaches the service through JtopManager, which reads this module global
        service.JTOP_PIPE = socket
    from orinbench.telemetry.sources.jtop import (
        TOO_OLD,
        UnsupportedJtopError,
        jetson_stats_supported,
        parse_jtop_power,
    )

    version = str(getattr(jtop_pkg, "__version__", "unknown"))
    if not jetson_stats_supported(version):
        _emit({"error": f"jetson-stats {version} is not supported for power ({TOO_OLD})"})
        return EXIT_ERROR
    stop = threading.Event()
    if not probe:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    asked = interval
    try:
        jetson = jtop_pkg.jtop(interval=asked)
        jetson.start()
        service = float(jetson.interval)  # the service's interval (4.2+), set by its first client
        if service > asked * (1 + 1e-6):
            # ok() would time out at 3 x `asked` between two healthy readings: ask for the
            # service's interval instead (the service keeps its interval either way)
            jetson.close()
            asked = service
            jetson = jtop_pkg.jtop(interval=asked)
            jetson.start()
    except Exception as exc:  # JtopException, ConnectionRefusedError, PermissionError, ...
        msg = " ".join(str(exc).split()) or type(exc).__name__
        _emit({"error": f"jtop.service did not answer: {msg}"})
        return EXIT_ERROR
    try:
        _emit(
            {
                "hello": {
                    "interval": float(jetson.interval),
                    "requested": asked,
                    "version": version,
                }
            }
        )
        if probe:
            return 0
        last_key: Any = None
        while not stop.is_set():
            alive = jetson.ok()
            if stop.is_set():
                break
            if not alive:
                _emit(
                    {
                        "error": f"jtop stopped sampling: no data from jtop.service for "
                        f"{3 * asked:g} s"
                    }
                )
                return EXIT_ERROR
            t = time.monotonic()
            stats = getattr(jetson, "_stats", {}) or {}
            key = stats.get("uptime")
            if key is not None and key == last_key:
                continue  # the same reading seen twice (ok() also wakes for the first one)
            last_key = key
            try:
                reading = parse_jtop_power(jetson.power)
            except UnsupportedJtopError as exc:
                _emit({"error": f"{exc} ({TOO_OLD})"})
                return EXIT_ERROR
            except (ValueError, KeyError, TypeError) as exc:
                _emit({"error": f"cannot read jtop power: {exc}"})
                return EXIT_ERROR
            _emit(
                {
                    "t": t,
                    "total_w": reading.total_w,
                    "rails_w": reading.rails,
                    "total_of": reading.total_of,
                    "dropped": list(reading.dropped),
                }
            )
    except BrokenPipeError:
        return 0
    except Exception as exc:
        _emit({"error": f"jtop client failed: {' '.join(str(exc).split())}"})
        return EXIT_ERROR
    finally:
        try:
            jetson.close()
        except Exception:  # closing a broken client must not hide the real error
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
