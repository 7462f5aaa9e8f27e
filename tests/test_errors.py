from __future__ import annotations

import pytest

from orinbench.errors import (
    ExitCode,
    IncomparableError,
    InputFileError,
    InternalError,
    NotReadyError,
    OrinbenchError,
)


def test_message_is_one_line_with_what_why_fix() -> None:
    e = InputFileError(
        "model file not found: x.onnx", why="no such file\nor folder", fix="check the path"
    )
    assert str(e) == "model file not found: x.onnx: no such file or folder. Fix: check the path."
    assert e.exit_code == ExitCode.USAGE == 2


@pytest.mark.parametrize(
    ("cls", "code"), [(IncomparableError, 3), (NotReadyError, 4), (InputFileError, 2)]
)
def test_exit_codes(cls: type[OrinbenchError], code: int) -> None:
    assert cls("x").exit_code == code


def test_internal_error_is_not_a_user_error() -> None:
    assert not issubclass(InternalError, OrinbenchError)


def test_exit_codes_print_as_numbers_on_every_python() -> None:
    assert str(ExitCode.USAGE) == "2" and f"{ExitCode.NOT_READY}" == "4"
