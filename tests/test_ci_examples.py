"""The CI examples under docs/ci/: valid YAML, the gate flow complete, and every ``orinbench``
command line in them accepted by orinbench's own argument parser."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orinbench.cli.main import build_parser
from orinbench.gate import load_targets

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse the CI examples (dev extra)")

CI = Path(__file__).resolve().parents[1] / "docs" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _github_scripts(data: dict[str, Any]) -> Iterator[str]:
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            if "run" in step:
                yield str(step["run"])


def _gitlab_scripts(data: dict[str, Any]) -> Iterator[str]:
    for job in data.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                yield from (str(s) for s in job.get(key, []))


def _orinbench_commands(script: str) -> Iterator[str]:
    """Each ``orinbench ...`` command in a shell script (line continuations joined)."""
    text = script.replace("\\\n", " ")
    for line in text.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            part = part.strip()
            if part.startswith("orinbench "):
                yield part


def _all_commands() -> list[tuple[str, str]]:
    out = [(GITHUB.name, c) for s in _github_scripts(_load(GITHUB)) for c in _orinbench_commands(s)]
    out += [
        (GITLAB.name, c) for s in _gitlab_scripts(_load(GITLAB)) for c in _orinbench_commands(s)
    ]
    return out


def _argv(command: str) -> list[str]:
    # GitHub expressions hold spaces; variables stay as literal text, which argparse accepts
    command = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", command)
    return shlex.split(command)[1:]


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


COMMANDS = _all_commands()


def test_examples_hold_the_whole_gate_flow() -> None:
    verbs = {_argv(c)[0] for _, c in COMMANDS if _argv(c) and not _argv(c)[0].startswith("-")}
    assert {"bench", "gate", "report"} <= verbs
    for name in (GITHUB.name, GITLAB.name):
        gate = [c for f, c in COMMANDS if f == name and _argv(c)[:1] == ["gate"]]
        assert gate, name
        assert all("--junit" in c and "--markdown" in c for c in gate)
        assert all("--baseline" in c for c in gate)  # --baseline or --baseline-dir
        assert any("--html" in c for f, c in COMMANDS if f == name and _argv(c)[:1] == ["report"])


def test_github_workflow_shape() -> None:
    data = _load(GITHUB)
    job = next(iter(data["jobs"].values()))
    assert "self-hosted" in job["runs-on"]
    text = GITHUB.read_text(encoding="utf-8")
    assert '>> "$GITHUB_STEP_SUMMARY"' in text
    uploads = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and "out/report.html" in uploads[0]["with"]["path"]
    assert "out/junit.xml" in uploads[0]["with"]["path"]
    # the report and summary run even when the gate step fails
    for step in job["steps"]:
        if "orinbench report" in str(step.get("run", "")) or "GITHUB_STEP_SUMMARY" in str(
            step.get("run", "")
        ):
            assert "!cancelled()" in str(step.get("if", ""))


def test_gitlab_pipeline_shape() -> None:
    data = _load(GITLAB)
    gate = data["gate"]
    assert gate["artifacts"]["when"] == "always"
    assert gate["artifacts"]["reports"]["junit"] == "out/junit.xml"
    assert "out/report.html" in gate["artifacts"]["paths"]
    assert any("orinbench report" in s for s in gate["after_script"])
    assert data["default"]["tags"] == ["jetson-orin"]
    assert data["benchmark"]["resource_group"]


def test_example_targets_file_loads() -> None:
    targets = load_targets(CI / "targets.toml")
    assert {t.metric for t in targets.targets} >= {"latency.p99_ms", "throughput.fps"}
    assert targets.tolerances["latency.p99_ms"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("source", "command"), COMMANDS, ids=[f"{f}:{c[:60]}" for f, c in COMMANDS]
)
def test_command_parses(source: str, command: str) -> None:
    parser = build_parser()
    argv = _argv(command)
    verb = argv[0]
    if not verb.startswith("-") and verb not in _subcommands(parser):
        pytest.skip(f"'orinbench {verb}' is not registered yet (pending in COMMAND_MODULES)")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, f"{source}: {command!r} does not parse: {err.getvalue().strip()}"
        return
    assert getattr(args, "handler", None) is not None, command
