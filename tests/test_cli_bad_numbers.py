"""Non-finite time options and negative seeds: one line and exit 2, never a traceback (exit 70).

NaN passed the old ``< 0`` / ``<= 0`` checks (every comparison with NaN is False) and inf passed
them by being large; both crashed later, deep in the run. numpy refuses negative seeds, but only
when the generator is made, as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orinbench.errors import ExitCode

Cli = Callable[..., tuple[int, str, str]]
MEASURE = ("--power", "none", "--no-history", "-q")


def one_line_usage_error(code: int, out: str, err: str) -> str:
    assert code == ExitCode.USAGE, (code, out, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("orinbench: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--duration", "nan"), "--duration must be a finite number > 0 seconds, not nan"),
        (("--duration", "inf"), "--duration must be a finite number > 0 seconds, not inf"),
        (("--warmup", "nan"), "warm-up seconds must be a finite number >= 0, not nan"),
        (("--warmup", "inf"), "warm-up seconds must be a finite number >= 0, not inf"),
        (("--until-ci", "0.01", "--max-seconds", "inf"), "--max-seconds must be a finite"),
        (("--iterations", "5", "--idle-seconds", "nan"), "--idle-seconds must be a finite"),
        (("--iterations", "5", "--seed", "-1"), "argument --seed: must be an integer >= 0"),
        (("--iterations", "5", "--seed", "1.5"), "argument --seed: must be an integer >= 0"),
    ],
)
def test_bench_refuses_bad_numbers(
    run_cli: Cli, conv_model: Path, args: tuple[str, ...], message: str
) -> None:
    line = one_line_usage_error(*run_cli("bench", str(conv_model), *MEASURE, *args))
    assert message in line


def test_soak_refuses_a_nan_warmup_and_a_negative_seed(run_cli: Cli, conv_model: Path) -> None:
    soak = ("soak", str(conv_model), "--seconds", "2", "--window-s", "1", *MEASURE)
    assert "warm-up seconds must be a finite" in one_line_usage_error(
        *run_cli(*soak, "--warmup", "nan")
    )
    assert "--seed: must be an integer >= 0, not '-3'" in one_line_usage_error(
        *run_cli(*soak, "--seed", "-3")
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("calib", "generate", "{model}", "--out", "{tmp}/cal", "--count", "1", "--seed", "-1"),
        ("zoo", "export", "sample-bev", "--size", "tiny", "--out", "{tmp}/zoo", "--seed", "-1"),
        ("decide", "{model}", "--calib-data", "{tmp}", "--seed", "-1", "--no-history"),
    ],
)
def test_every_seed_is_checked(
    run_cli: Cli, conv_model: Path, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    args = [a.format(model=conv_model, tmp=tmp_path) for a in argv]
    line = one_line_usage_error(*run_cli(*args))
    assert "argument --seed: must be an integer >= 0, not '-1'" in line
    assert not (tmp_path / "cal").exists() and not (tmp_path / "zoo").exists()


def test_a_seed_of_zero_and_up_still_works(run_cli: Cli, conv_model: Path) -> None:
    code, out, err = run_cli("bench", str(conv_model), *MEASURE, "--iterations", "5", "--seed", "7")
    assert code == 0, out + err
