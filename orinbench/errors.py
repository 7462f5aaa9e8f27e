"""The one exception hierarchy of orinbench, and the process exit codes.

Every error a user can cause is an :class:`OrinbenchError`. Its message is one line that says what
failed, why, and what to do. The CLI prints that line and exits with the error's ``exit_code``;
anything else that escapes is a bug and is shown with its traceback (:class:`InternalError`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the ``orinbench`` command (docs/exit-codes.md)."""

    OK = 0
    #: a target failed or a metric regressed (gate, accuracy budget, soak targets)
    FAILED = 1
    #: bad input or usage: a missing file, a malformed model/targets/result, a missing dependency
    USAGE = 2
    #: the result and the baseline come from different environments
    INCOMPARABLE = 3
    #: the device is not ready to benchmark (``system check``, ``--require-tuned``)
    NOT_READY = 4
    #: a bug in orinbench itself
    INTERNAL = 70

    # Python 3.10 prints IntEnum members by name ("ExitCode.USAGE"); 3.11 by value. Scripts and
    # CI logs read the number, so print the number everywhere.
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class OrinbenchError(Exception):
    """Base of every error orinbench raises on purpose.

    ``what`` names what failed, ``why`` the cause, ``fix`` what the user should do. The rendered
    message is a single line so that it can be printed as-is by the CLI and grepped in CI logs.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, what: str, *, why: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.why = why
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self.what.rstrip(".")]
        if self.why:
            parts.append(self.why.rstrip("."))
        msg = ": ".join(parts)
        if self.fix:
            msg += f". Fix: {self.fix.rstrip('.')}"
        return " ".join((msg + ".").split())  # one line, whatever the parts held


class UsageError(OrinbenchError):
    """Arguments that contradict each other or are out of range."""


class InputFileError(OrinbenchError):
    """A file the user named is missing, unreadable, or not of the expected kind."""


class ModelError(InputFileError):
    """An ONNX model that cannot be loaded, checked, or does not fit the request."""


class ShapeError(ModelError):
    """An input shape that is missing a dynamic dimension or does not match the model."""


class ResultFormatError(InputFileError):
    """A result/baseline JSON that is corrupt, from a newer schema, or otherwise unreadable."""


class TargetsError(InputFileError):
    """A targets file that cannot be parsed, or names a metric the result lacks."""


class DependencyMissingError(OrinbenchError):
    """An optional dependency (TensorRT, pycuda, jtop, onnxruntime, ...) is not importable."""


class BackendError(OrinbenchError):
    """A backend failed while loading or running a model."""


class BuildError(BackendError):
    """A TensorRT engine could not be built."""


class EngineCompatibilityError(BackendError):
    """An engine file was built by another TensorRT version or for another GPU."""


class CalibrationError(OrinbenchError):
    """A calibration dataset, loader or cache is unusable."""


class PowerSourceError(OrinbenchError):
    """A requested power source is unavailable or stopped sampling."""


class RecipeError(OrinbenchError):
    """A pipeline recipe is invalid; the message names the stage and the key."""


class BaselineExistsError(OrinbenchError):
    """A baseline is already recorded at that key and ``--replace`` was not given."""


class ImpreciseBaselineError(OrinbenchError):
    """A result is too imprecise to be a baseline and ``--allow-imprecise`` was not given."""


class HistoryError(OrinbenchError):
    """The history database is locked or corrupt."""


class IncomparableError(OrinbenchError):
    """Two results come from environments that must not be compared."""

    exit_code = ExitCode.INCOMPARABLE


class NotReadyError(OrinbenchError):
    """The device is not in a state fit for benchmarking (clocks, power mode)."""

    exit_code = ExitCode.NOT_READY


class InternalError(Exception):
    """A bug in orinbench. Deliberately *not* an OrinbenchError: the CLI shows its traceback."""
