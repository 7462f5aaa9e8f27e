"""Outputs that would replace an input the command line names only indirectly.

An input folder's files (calibration samples, their manifest), the script of a
``--data-loader-script FILE.py:function`` argument, an ONNX model's external-data file, and
the history database taken from ``$ORINBENCH_HISTORY``: each used to be replaced with exit 0.
A history path that holds a file which is not SQLite is refused and left as it was.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from _gate_results import make_result
from conftest import make_conv_model

from orinbench.cli._outputs import check_outputs
from orinbench.errors import HistoryError, UsageError
from orinbench.history.store import HistoryStore, append_to_history
from orinbench.results.io import save_result

Run = Callable[..., tuple[int, str, str]]


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _calib_data(tmp_path: Path, name: str = "data") -> Path:
    from orinbench.calib.dataset import write_sample

    folder = tmp_path / name
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
        write_sample(folder / f"{i:04d}.npz", {"x": x})
    (folder / "manifest.toml").write_text('source = "test"\nsample_count = 4\n')
    return folder


def _external_model(folder: Path) -> tuple[Path, Path]:
    """The conv model with its weights in ``conv.onnx.data`` beside it."""
    folder.mkdir(exist_ok=True)
    model = folder / "conv.onnx"
    onnx.save_model(
        make_conv_model(),
        str(model),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="conv.onnx.data",
        size_threshold=0,
    )
    data = folder / "conv.onnx.data"
    assert data.stat().st_size > 0
    return model, data


# ------------------------------------------------------------------------------------------
# the files inside an input folder


@pytest.mark.parametrize("target", ["0000.npz", "manifest.toml"])
def test_quantize_out_onto_a_calibration_sample_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path, target: str
) -> None:
    data = _calib_data(tmp_path)
    before = _snapshot(data)
    code, _, err = run_cli(
        "quantize", str(conv_model), "--data", str(data), "--out", str(data / target)
    )
    line = _one_line(err)
    assert code == 2 and "refusing to write --out" in line and "input folder" in line, line
    assert str(data) in line
    assert _snapshot(data) == before


def test_accuracy_out_onto_the_manifest_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    data = _calib_data(tmp_path)
    before = _snapshot(data)
    code, _, err = run_cli(
        "accuracy",
        str(conv_model),
        "--reference",
        str(conv_model),
        "--data",
        str(data),
        "--out",
        str(data / "manifest.toml"),
    )
    assert code == 2 and "input folder" in _one_line(err)
    assert _snapshot(data) == before


def test_sensitivity_out_onto_a_sample_in_a_subfolder_path_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    data = _calib_data(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    before = _snapshot(data)
    # reached through "..": the check compares resolved paths
    out = tmp_path / "elsewhere" / ".." / "data" / "0001.npz"
    code, _, err = run_cli("sensitivity", str(conv_model), "--data", str(data), "--out", str(out))
    assert code == 2 and "input folder" in _one_line(err)
    assert _snapshot(data) == before


def test_a_link_into_an_input_folder_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    data = _calib_data(tmp_path)
    link = tmp_path / "link.npz"
    link.symlink_to(data / "0002.npz")
    before = _snapshot(data)
    code, _, err = run_cli("quantize", str(conv_model), "--data", str(data), "--out", str(link))
    assert code == 2 and "input folder" in _one_line(err)
    assert _snapshot(data) == before


def test_a_link_inside_an_input_folder_is_refused(conv_model: Path, tmp_path: Path) -> None:
    # the atomic write replaces the link itself, which is one of the folder's entries
    data = _calib_data(tmp_path)
    outside = tmp_path / "outside.npz"
    outside.write_bytes((data / "0000.npz").read_bytes())
    (data / "9999.npz").symlink_to(outside)
    args = argparse.Namespace(model=conv_model, data=data, out=data / "9999.npz")
    with pytest.raises(UsageError, match="input folder"):
        check_outputs(args, ("out",))


def test_new_files_and_neighbouring_folders_are_still_allowed(
    conv_model: Path, tmp_path: Path
) -> None:
    data = _calib_data(tmp_path)
    # a name that shares the folder's prefix is not inside it
    neighbour = tmp_path / "data2"
    neighbour.mkdir()
    (neighbour / "r.json").write_text("{}")
    for out in (data / "new.onnx", neighbour / "r.json", tmp_path / "r.json"):
        check_outputs(argparse.Namespace(model=conv_model, data=data, out=out), ("out",))


def test_every_command_benefits_report_html_into_a_baseline_folder(
    run_cli: Run, tmp_path: Path
) -> None:
    res = tmp_path / "r.json"
    save_result(make_result(n=50), res)
    bl = tmp_path / "bl"
    bl.mkdir()
    kept = bl / "kept.json"
    save_result(make_result(n=50), kept)
    before = kept.read_bytes()
    code, _, err = run_cli("report", str(res), "--baseline-dir", str(bl), "--markdown", str(kept))
    assert code == 2 and "input folder" in _one_line(err)
    assert kept.read_bytes() == before


# ------------------------------------------------------------------------------------------
# the script of --data-loader-script FILE.py:function


def test_quantize_out_onto_the_loader_script_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    script = tmp_path / "loader.py"
    script.write_text(
        "import numpy as np\n\n"
        "def good():\n"
        "    for _ in range(2):\n"
        "        yield {'x': np.zeros((1, 3, 16, 16), np.float32)}\n"
    )
    before = script.read_bytes()
    code, _, err = run_cli(
        "quantize",
        str(conv_model),
        "--data-loader-script",
        f"{script}:good",
        "--out",
        str(script),
    )
    line = _one_line(err)
    assert code == 2 and "--data-loader-script" in line and str(script) in line, line
    assert script.read_bytes() == before


def test_accuracy_out_onto_the_loader_script_through_a_relative_path(
    run_cli: Run, conv_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loaders").mkdir()
    script = tmp_path / "loaders" / "l.py"
    script.write_text("def good():\n    yield from ()\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(
        "accuracy",
        str(conv_model),
        "--reference",
        str(conv_model),
        "--data-loader-script",
        "loaders/l.py:good",
        "--out",
        str(script),
    )
    assert code == 2 and "--data-loader-script" in _one_line(err)
    assert script.read_text().startswith("def good")


# ------------------------------------------------------------------------------------------
# the external-data file of an input ONNX model


def test_bench_out_onto_the_models_external_data_is_refused(run_cli: Run, tmp_path: Path) -> None:
    model, data = _external_model(tmp_path / "ext")
    before = data.read_bytes()
    code, _, err = run_cli(
        "bench", str(model), "--iterations", "3", "--no-history", "--out", str(data)
    )
    line = _one_line(err)
    assert code == 2 and "external weights" in line and str(model) in line, line
    assert data.read_bytes() == before


def test_accuracy_out_onto_the_references_external_data_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    model, data = _external_model(tmp_path / "ext")
    hard = tmp_path / "hard.data"
    os.link(data, hard)  # the same file under another name
    before = data.read_bytes()
    for out in (data, hard):
        code, _, err = run_cli(
            "accuracy",
            str(conv_model),
            "--reference",
            str(model),
            "--data",
            str(_calib_data(tmp_path, f"d{out.name}")),
            "--out",
            str(out),
        )
        assert code == 2 and "external weights" in _one_line(err), out
    assert data.read_bytes() == before


def test_a_model_onnx_cannot_parse_does_not_break_the_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\x00not a protobuf" * 10)
    out = tmp_path / "r.json"
    out.write_text("{}")  # an existing output: the model's external data is looked up
    check_outputs(argparse.Namespace(model=bad, out=out), ("out",))


def test_a_model_without_external_data_allows_an_existing_output(
    conv_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "conv.onnx.data"
    out.write_text("old result")
    check_outputs(argparse.Namespace(model=conv_model, out=out), ("out",))


# ------------------------------------------------------------------------------------------
# the history database from $ORINBENCH_HISTORY, and files that are not SQLite


def _gate_inputs(tmp_path: Path) -> tuple[Path, Path]:
    res = tmp_path / "r.json"
    save_result(make_result(n=50), res)
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"latency.p99_ms" = "< 1000"\n')
    return res, targets


def test_env_history_onto_the_gated_result_is_refused(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res, targets = _gate_inputs(tmp_path)
    before = res.read_bytes()
    monkeypatch.setenv("ORINBENCH_HISTORY", str(res))
    code, _, err = run_cli("gate", str(res), "--targets", str(targets))
    line = _one_line(err)
    assert code == 2 and "$ORINBENCH_HISTORY" in line and "inputs" in line, line
    assert res.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))
    # --no-history: nothing is appended, nothing to refuse
    code, _, err = run_cli("gate", str(res), "--targets", str(targets), "--no-history")
    assert code == 0, err
    assert res.read_bytes() == before


def test_env_history_onto_the_benchmarked_model_is_refused(
    run_cli: Run, conv_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import orinbench.cli.bench as bench_cli

    monkeypatch.setattr(bench_cli, "bench_model", lambda *a, **k: pytest.fail("benchmarked"))
    before = conv_model.read_bytes()
    monkeypatch.setenv("ORINBENCH_HISTORY", str(conv_model))
    code, _, err = run_cli("bench", str(conv_model), "--iterations", "3")
    assert code == 2 and "$ORINBENCH_HISTORY" in _one_line(err)
    assert conv_model.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_history_command_refuses_a_text_file_and_leaves_it(run_cli: Run, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 50)
    before = notes.read_bytes()
    code, _, err = run_cli("history", "--history", str(notes))
    line = _one_line(err)
    assert code == 2 and "not an orinbench history database (not SQLite)" in line, line
    assert "--history" in line
    assert notes.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_gate_history_onto_a_json_file_is_refused_before_the_work(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res, targets = _gate_inputs(tmp_path)
    other = tmp_path / "other.json"
    other.write_text('{"not": "sqlite"}')
    for how in ("flag", "env"):
        argv = ["gate", str(res), "--targets", str(targets)]
        if how == "flag":
            argv += ["--history", str(other)]
        else:
            monkeypatch.setenv("ORINBENCH_HISTORY", str(other))
        code, out, err = run_cli(*argv)
        assert code == 2 and "not SQLite" in _one_line(err), how
        assert "gate" not in out.lower()  # refused before judging
    assert other.read_text() == '{"not": "sqlite"}'
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_an_empty_history_file_is_a_new_database(run_cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    res, targets = _gate_inputs(tmp_path)
    code, _, err = run_cli("gate", str(res), "--targets", str(targets), "--history", str(db))
    assert code == 0, err
    with HistoryStore(db) as store:
        assert [r.command for r in store.query()] == ["gate"]


def test_implicit_append_to_a_text_file_leaves_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"this is not sqlite " * 300)
    note = append_to_history(make_result(), command="gate", path=notes)
    assert note is not None and "not SQLite" in note and "not recorded" in note
    assert notes.read_bytes() == b"this is not sqlite " * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_check_history_file(tmp_path: Path) -> None:
    from orinbench.history.store import check_history_file

    check_history_file(tmp_path / "missing.db")
    (tmp_path / "empty.db").touch()
    check_history_file(tmp_path / "empty.db")
    short = tmp_path / "short.db"
    short.write_bytes(b"SQLite")  # a prefix of the header is not a database
    with pytest.raises(HistoryError, match="not SQLite"):
        check_history_file(short)
    with pytest.raises(HistoryError, match=r"point \$ORINBENCH_HISTORY at another path"):
        check_history_file(short, flag="$ORINBENCH_HISTORY")
