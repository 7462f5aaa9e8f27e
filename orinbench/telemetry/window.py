"""A power source and a conditions monitor opened and closed together around the measured window.

The harness starts one object before the window and stops it after; :class:`TelemetryWindow` is
that object when both power and conditions are wanted. ``stop()`` returns the power trace (what the
harness stores) and keeps the conditions trace in :attr:`TelemetryWindow.conditions_trace`.
"""

from __future__ import annotations

from .conditions import ConditionsMonitor, ConditionsTrace
from .powertrace import PowerSource, PowerTrace


class TelemetryWindow:
    """Starts ``conditions`` then ``power``; stops ``power`` first, then ``conditions``.

    Either may be None. The power source is started last and stopped first so that its window is
    the tightest around the timed loop.
    """

    def __init__(
        self, power: PowerSource | None = None, conditions: ConditionsMonitor | None = None
    ) -> None:
        self.power = power
        self.conditions = conditions
        self.conditions_trace: ConditionsTrace | None = None

    def start(self) -> None:
        self.conditions_trace = None
        if self.conditions is not None:
            self.conditions.start()
        if self.power is not None:
            try:
                self.power.start()
            except BaseException:
                if self.conditions is not None:
                    self.conditions.stop()
                raise

    def stop(self) -> PowerTrace | None:
        try:
            return self.power.stop() if self.power is not None else None
        finally:
            if self.conditions is not None:
                self.conditions_trace = self.conditions.stop()
