"""Targets files: the format, and errors that name the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orinbench.errors import ExitCode, TargetsError
from orinbench.gate.targets import (
    Target,
    load_targets,
    parse_target,
    parse_targets,
    parse_tolerance,
)

GOOD = """\
# release targets
"latency.p50_ms" = "<= 40"

[targets]
"latency.p99_ms" = "< 80"
"throughput.fps" = ">12.5"
power.mean_w = "< 60"          # unquoted dotted key: a nested table in TOML
"accuracy.cosine" = "== 1"
"gpu_compute.p95_ms" = ">= 0"

[tolerance]
"latency.p99_ms" = "5%"
"power.mean_w" = "12.5 %"
"""


def test_parses_targets_and_tolerances_with_lines() -> None:
    t = parse_targets(GOOD, source="t.toml")
    by = {x.metric: x for x in t.targets}
    assert set(by) == {
        "latency.p50_ms", "latency.p99_ms", "throughput.fps", "power.mean_w",
        "accuracy.cosine", "gpu_compute.p95_ms",
    }  # fmt: skip
    assert (by["latency.p99_ms"].op, by["latency.p99_ms"].threshold) == ("<", 80.0)
    assert (by["throughput.fps"].op, by["throughput.fps"].threshold) == (">", 12.5)
    assert by["latency.p50_ms"].line == 2
    assert by["latency.p99_ms"].line == 5
    assert by["power.mean_w"].line == 7
    assert t.tolerances == {"latency.p99_ms": pytest.approx(0.05), "power.mean_w": 0.125}


@pytest.mark.parametrize(
    ("op", "value", "ok"),
    [("<", 79.9, True), ("<", 80.0, False), ("<=", 80.0, True), (">", 80.0, False),
     (">=", 80.0, True), ("==", 80.0 * (1 + 1e-12), True), ("==", 80.1, False)],
)  # fmt: skip
def test_target_check(op: str, value: float, ok: bool) -> None:
    assert Target("m", op, 80.0).check(value) is ok


def err(text: str) -> str:
    with pytest.raises(TargetsError) as info:
        parse_targets(text, source="t.toml")
    assert info.value.exit_code == ExitCode.USAGE
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_malformed_toml_names_the_line() -> None:
    msg = err('[targets]\n"latency.p99_ms" = "< 80"\n"x" = < 3\n')
    assert "t.toml is not valid TOML" in msg and "line 3" in msg


def test_bad_operator_names_key_and_line() -> None:
    msg = err('[targets]\n"latency.p50_ms" = "< 10"\n"latency.p99_ms" = "~ 80"\n')
    assert "t.toml:3:" in msg and "latency.p99_ms" in msg and "operator" in msg
    assert "t.toml:2:" in err('[targets]\n"a" = "=> 3"\n')
    assert "operator '='" in err('"a" = "= 3"\n')
    assert "operator '!='" in err('"a" = "!= 3"\n')


def test_non_numeric_threshold() -> None:
    msg = err('[targets]\n\n"throughput.fps" = "> fast"\n')
    assert "t.toml:3:" in msg and "throughput.fps" in msg and "non-numeric" in msg
    assert "non-numeric" in err('"a" = "< 80ms"\n')
    assert "non-numeric" in err('"a" = "< nan"\n')
    assert "not a comparison string" in err('"a" = 80\n')


def test_unknown_section_is_named() -> None:
    msg = err('[targets]\n"a" = "< 1"\n\n[tolerence]\n"a" = "5%"\n')
    assert "t.toml:4:" in msg and "unknown section [tolerence]" in msg


def test_bad_tolerances() -> None:
    assert "not a percentage" in err('[tolerance]\n"a" = "5"\n')
    assert "not a percentage" in err('[tolerance]\n"a" = "-5%"\n')
    assert "not a percentage string" in err('[tolerance]\n"a" = 0.05\n')
    # "inf%" does not match the pattern, but a number beyond a float's range reads as inf
    assert "not a finite percentage" in err('[tolerance]\n"a" = "1e400%"\n')
    assert parse_tolerance("1e300%") == pytest.approx(1e298)
    assert "t.toml:5:" in err('"a" = "< 1"\n[tolerance]\n"b" = "1%"\n\n"a" = "x%"\n')


def test_duplicate_target_is_an_error() -> None:
    assert "given twice" in err('"a.b" = "< 1"\n[targets]\n"a.b" = "< 2"\n')


def test_parse_target_direct() -> None:
    assert parse_target("m", " >= -3e2 ") == Target("m", ">=", -300.0)


def test_load_targets_reads_files_and_refuses_missing_or_binary(tmp_path: Path) -> None:
    p = tmp_path / "t.toml"
    p.write_text(GOOD, encoding="utf-8")
    assert len(load_targets(p).targets) == 6
    with pytest.raises(Exception) as info:
        load_targets(tmp_path / "missing.toml")
    assert getattr(info.value, "exit_code", None) == ExitCode.USAGE
    b = tmp_path / "b.toml"
    b.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TargetsError):
        load_targets(b)


@pytest.mark.parametrize(
    "text", ["", "# only a comment\n", "[targets]\n", '[tolerance]\n"latency.p99_ms" = "5%"\n']
)
def test_a_targets_file_without_targets_fails_closed_exit_2(
    run_cli, tmp_path: Path, text: str
) -> None:
    # issue 12 item 7: an empty targets file used to print "gate PASS: nothing checked", exit 0
    from _gate_results import make_result

    from orinbench.results.io import save_result

    result = save_result(make_result(seed=1), tmp_path / "r.json")
    targets = tmp_path / "t.toml"
    targets.write_text(text, encoding="utf-8")
    code, out, _ = run_cli("gate", str(result), "--targets", str(targets), "--no-history")
    assert code == int(ExitCode.USAGE) == 2
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("gate ERROR: nothing checked")
    assert "[targets]" in summary and "PASS" not in out


# -- pinned by mutation testing (benchmarks/mutate.py): each test kills named mutants ----------


def test_target_check_each_operator_on_both_sides() -> None:
    # a deleted `<=`/`>=` branch falls through to `==`, which is wrong away from the threshold
    assert Target("m", "<=", 5.0).check(3.0) is True
    assert Target("m", "<=", 5.0).check(7.0) is False
    assert Target("m", ">=", 5.0).check(7.0) is True
    assert Target("m", ">=", 5.0).check(3.0) is False
    assert Target("m", ">", 5.0).check(7.0) is True
    assert Target("m", "<", 5.0).check(3.0) is True


def test_equality_tolerances_are_exactly_1e9_relative_and_1e12_absolute() -> None:
    assert Target("m", "==", 1.0).check(1.0 + 7e-10) is True  # inside 1e-9, outside 5e-10
    assert Target("m", "==", 1.0).check(1.0 + 2e-9) is False
    assert Target("m", "==", 0.0).check(7e-13) is True  # absolute: inside 1e-12, outside 5e-13
    assert Target("m", "==", 0.0).check(2e-12) is False


def test_target_str() -> None:
    assert str(Target("latency.p99_ms", "<", 80.0)) == "latency.p99_ms < 80"
    assert str(Target("fps", ">=", 12.5)) == "fps >= 12.5"


def test_error_location_prefixes() -> None:
    # no source: no prefix at all; a source without a line: "source: "
    with pytest.raises(TargetsError) as info:
        parse_target("m", "~ 3", line=4)
    assert str(info.value).startswith("target 'm'")
    with pytest.raises(TargetsError) as info:
        parse_tolerance("5", key="m", source="t.toml")
    assert str(info.value).startswith("t.toml: tolerance of 'm'")
    with pytest.raises(TargetsError) as info:
        parse_tolerance("5", key="m")
    assert str(info.value).startswith("tolerance of 'm'")


def test_a_section_that_is_not_a_table() -> None:
    msg = err('"a" = "< 1"\ntargets = "< 3"\n')
    assert "t.toml:2: 'targets' must be a table" in msg


def test_line_numbers_at_the_edges() -> None:
    # a key on the first line is line 1
    assert parse_targets('"a" = "< 1"\n').targets[0].line == 1
    # a key that cannot be found in the text (written with an escape) is line 0
    assert parse_targets('"\\u0061" = "< 1"\n').targets[0].line == 0
    # only the first [targets] header counts: a string that looks like a header later on does not
    # move the search window past the key
    text = '[targets]\n"a" = "< 1"\n"b" = """\n[targets]\n"""\n'
    assert "t.toml:3: target 'b'" in err(text)
