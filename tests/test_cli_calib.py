"""The calibration commands run for real: calib, quantize, accuracy, sensitivity, calibrate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_accuracy_sensitivity import two_branch_model

from orinbench import _lazy
from orinbench.calib.cache import make_cache, read_cache
from orinbench.calib.dataset import write_sample
from orinbench.errors import ExitCode
from orinbench.precision.qdq import summarize_qdq
from orinbench.results.io import load_result

REPO = Path(__file__).resolve().parents[1]
CALIB = REPO / "calib" / "sample_bev_tiny"
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orinbench.zoo.sample_bev import export_sample_bev

    return export_sample_bev(tmp_path_factory.mktemp("zoo") / "sample_bev.onnx", size="tiny")


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == ExitCode.USAGE, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("orinbench: error: "), err
    assert "Traceback" not in err
    return err


def test_generate_and_validate(run_cli: Cli, sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    code, stdout, _ = run_cli("calib", "generate", str(sample), "--out", str(out), "--count", "3")
    assert code == 0 and "wrote 3 synthetic samples" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["0000.npz", "0001.npz", "0002.npz",
                                                     "manifest.toml"]  # fmt: skip
    code, stdout, _ = run_cli("calib", "generate", str(sample), "--out", str(out))
    assert code == ExitCode.USAGE  # refuses to mix with existing samples without --force
    code, stdout, _ = run_cli("calib", "validate", str(sample), "--data", str(out), "--json")
    assert code == 0 and json.loads(stdout)["sample_count"] == 3
    code, stdout, _ = run_cli("calib", "validate", str(sample), "--data", str(CALIB))
    assert code == 0 and stdout.startswith("16 samples OK in")


def test_bad_data_is_one_line_exit_2(run_cli: Cli, sample: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    write_sample(bad / "0000.npz", {"images": np.zeros((1, 6, 3, 64, 176), np.float32)})
    write_sample(bad / "0001.npz", {"image": np.zeros((1, 6, 3, 64, 176), np.float32)})
    err = one_line_error(*run_cli("calib", "validate", str(sample), "--data", str(bad)))
    assert "0001.npz has key 'image', which is not an input of the model" in err
    (tmp_path / "empty").mkdir()
    err = one_line_error(*run_cli("calib", "validate", str(sample), "--data",
                                  str(tmp_path / "empty")))  # fmt: skip
    assert "holds no .npz samples" in err
    script = tmp_path / "loader.py"
    script.write_text("def frames():\n    raise FileNotFoundError('v1.0-mini not found')\n")
    err = one_line_error(*run_cli("calib", "validate", str(sample), "--data-loader-script",
                                  f"{script}:frames"))  # fmt: skip
    assert "raised when called: FileNotFoundError: v1.0-mini not found" in err


def test_quantize_accuracy_and_gate_on_the_sample_model(
    run_cli: Cli, sample: Path, tmp_path: Path
) -> None:
    qdq = tmp_path / "sample.qdq.onnx"
    code, stdout, err = run_cli("quantize", str(sample), "--data", str(CALIB), "--out", str(qdq),
                                "--exclude", "heads.*", "--max-samples", "8")  # fmt: skip
    assert code == 0, stdout
    assert "(entropy, 8 samples from" in stdout
    assert "calibrate: 100% 8 samples" in err  # progress, as plain lines when not a TTY
    s = summarize_qdq(qdq)
    assert s.float_nodes and all(n.startswith("heads.") for n in s.float_nodes)
    assert not any(n.startswith("heads.") for n in s.quantized)

    result = tmp_path / "acc.json"
    code, stdout, _ = run_cli(
        "accuracy", str(qdq), "--reference", str(sample), "--data", str(CALIB),
        "--max-samples", "6", "--out", str(result), "-q",
    )  # fmt: skip
    assert code == 0, stdout
    for name in ("heatmap", "boxes", "map_seg"):
        assert name in stdout
    metrics = load_result(result).metrics()
    assert metrics["accuracy.sample_count"] == 6.0
    assert 0 < metrics["accuracy.rel_l2.max"] < 0.5
    assert "accuracy.outputs.heatmap.topk_agreement.min" in metrics

    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[targets]\n"accuracy.rel_l2.max" = "< 0.5"\n"accuracy.cosine.min" = "> 0.9"\n'
    )
    code, out, err = run_cli("gate", str(result), "--targets", str(targets), "--no-history")
    assert code == 0, out + err
    targets.write_text('[targets]\n"accuracy.rel_l2.max" = "< 0.000001"\n')
    code, out, err = run_cli("gate", str(result), "--targets", str(targets), "--no-history")
    assert code == ExitCode.FAILED, out + err


def test_accuracy_budget_sets_the_exit_code(run_cli: Cli, sample: Path, tmp_path: Path) -> None:
    fp16 = tmp_path / "s.fp16.onnx"
    from orinbench.precision.fp16 import convert_to_fp16

    convert_to_fp16(sample, fp16)
    args = ("accuracy", str(fp16), "--reference", str(sample), "--data", str(CALIB),
            "--max-samples", "2", "-q")  # fmt: skip
    code, stdout, _ = run_cli(*args, "--budget", "0.03")
    assert code == 0 and "budget     rel_l2 loss" in stdout and ": ok" in stdout
    code, stdout, _ = run_cli(*args, "--budget", "1e-9", "--json")
    assert code == ExitCode.FAILED
    assert json.loads(stdout)["candidate_kind"] == "onnx"


def test_quantize_bad_input_writes_nothing(run_cli: Cli, sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    err = one_line_error(*run_cli("quantize", str(sample), "--data", str(CALIB), "--out", str(out),
                                  "--exclude", "heads.heatmap.cnv"))  # fmt: skip
    assert "matches no node" in err and "heads.heatmap.conv" in err
    bad = tmp_path / "nan"
    images = np.zeros((1, 6, 3, 64, 176), np.float32)
    images[0, 2, 1, 5, 7] = np.inf
    write_sample(bad / "0000.npz", {"images": images})
    err = one_line_error(*run_cli("quantize", str(sample), "--data", str(bad), "--out", str(out)))
    assert "0000.npz key 'images' holds 0 NaN and 1 Inf values" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan"]


def test_inspect_and_diff_caches(run_cli: Cli, tmp_path: Path) -> None:
    a = tmp_path / "a.cache"
    b = tmp_path / "b.cache"
    a.write_text(make_cache("8.6.1", "entropy2", {"x": 1 / 127, "y": 0.5, "z": 0.25}).to_text())
    b.write_text(make_cache("8.6.1", "entropy2", {"x": 1 / 127, "y": 0.6, "w": 0.1}).to_text())
    code, stdout, _ = run_cli("calib", "inspect", str(a), "--trt-version", "8.6.1")
    assert code == 0
    assert (
        "TRT-8601-EntropyCalibration2" in stdout
        and "entropy2 (trt.IInt8EntropyCalibrator2)" in stdout
    )
    assert "TensorRT     8.6.1" in stdout and "tensors      3" in stdout
    assert "min 0.00787402 (x)" in stdout and "max 0.5 (y)" in stdout
    code, stdout, err = run_cli("calib", "inspect", str(a), "--trt-version", "10.3.0", "--json")
    assert code == 0 and json.loads(stdout)["tensor_count"] == 3
    assert "warning:" in err and "comes from TensorRT 8.6.1, this is TensorRT 10.3.0" in err

    code, stdout, _ = run_cli("calib", "diff", str(a), str(b))
    assert code == 0
    assert "common 2, changed 1" in stdout and "only in A: 1 (z)" in stdout
    assert "only in B: 1 (w)" in stdout and "+20.00 %" in stdout
    code, stdout, _ = run_cli("calib", "diff", str(a), str(b), "--max-drift", "0.1")
    assert code == ExitCode.FAILED and "FAILED" in stdout
    code, stdout, _ = run_cli("calib", "diff", str(a), str(b), "--max-drift", "0.25", "--json")
    assert code == 0 and json.loads(stdout)["only_in_a"] == ["z"]


def test_foreign_cache_is_one_line_exit_2(run_cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "x.cache"
    f.write_text('{"this": "is json"}\n')
    err = one_line_error(*run_cli("calib", "inspect", str(f)))
    assert "is not a TensorRT calibration cache" in err
    err = one_line_error(*run_cli("calib", "diff", str(f), str(f)))
    assert "is not a TensorRT calibration cache" in err
    assert read_cache  # the reader is the one the CLI uses


def test_sensitivity_cli(run_cli: Cli, tmp_path: Path) -> None:
    model = tmp_path / "two.onnx"
    onnx.save(two_branch_model(), model)
    rng = np.random.default_rng(1)
    for i in range(3):
        write_sample(tmp_path / "d" / f"{i}.npz",
                     {"x": rng.standard_normal((1, 4, 8, 8)).astype(np.float32)})  # fmt: skip
    report = tmp_path / "sens.json"
    code, stdout, err = run_cli(
        "sensitivity", str(model), "--data", str(tmp_path / "d"), "--method", "minmax",
        "--budget", "0.05", "--out", str(report),
    )  # fmt: skip
    assert code == 0, stdout + err
    assert "--exclude hard.conv" in stdout and "meets the budget" in stdout
    assert json.loads(report.read_text())["suggested_exclude"] == ["hard.conv"]
    assert "[1/2]" in err  # progress on stderr
    code, stdout, _ = run_cli("sensitivity", str(model), "--data", str(tmp_path / "d"),
                              "--method", "minmax", "--budget", "0.0", "--mode", "only",
                              "--max-steps", "1", "--json")  # fmt: skip
    assert code == ExitCode.FAILED and json.loads(stdout)["budget_met"] is False


@pytest.mark.skipif(_lazy.is_available("tensorrt"), reason="TensorRT is installed here")
def test_calibrate_without_tensorrt_says_how_to_get_it(
    run_cli: Cli, sample: Path, tmp_path: Path
) -> None:
    err = one_line_error(*run_cli("calibrate", str(sample), "--data", str(CALIB), "--out",
                                  str(tmp_path / "c.cache")))  # fmt: skip
    assert "TensorRT is not installed" in err
    assert not (tmp_path / "c.cache").exists()


def test_inspect_against_a_model_lists_the_names_that_differ(
    run_cli: Cli, sample: Path, tmp_path: Path
) -> None:
    from orinbench.calib.cache import network_activation_tensors, write_cache
    from orinbench.model.load import load_model

    tensors = network_activation_tensors(load_model(sample))
    renamed, removed, zero = tensors[:2], tensors[5:8], tensors[10]
    scales = {(f"/old/{t}" if t in renamed else t): 0.02 for t in tensors if t not in removed}
    scales[zero] = 0.0
    cache = write_cache(tmp_path / "bev.cache", make_cache("10.3.0", "entropy2", scales))
    code, stdout, _ = run_cli("calib", "inspect", str(cache), "--against", str(sample))
    assert code == 0
    n = len(tensors)
    assert f"{n - 6} of {n} network tensors have a usable scale" in stdout
    assert f"2 cache tensors with no match in the network (/old/{renamed[0]}, " in stdout
    assert f"5 network tensors the cache has no scale for ({renamed[0]}, {renamed[1]}, " in stdout
    assert f"1 network tensors with a zero, negative or non-finite scale ({zero})" in stdout

    code, stdout, _ = run_cli("calib", "inspect", str(cache), "--against", str(sample), "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["against_model"] == str(sample)
    against = data["against"]
    assert (against["network_tensors"], against["matched"]) == (n, n - 6)
    assert against["cache_only"] == [f"/old/{t}" for t in renamed]
    assert against["network_only"] == [*renamed, *removed]
    assert against["unusable"] == [zero]

    full = write_cache(
        tmp_path / "full.cache", make_cache("10.3.0", "entropy2", dict.fromkeys(tensors, 0.02))
    )
    code, stdout, _ = run_cli("calib", "inspect", str(full), "--against", str(sample))
    assert code == 0 and f"{n} of {n} network tensors have a usable scale" in stdout
    assert "0 cache tensors with no match" in stdout and "unusable" not in stdout


def test_inspect_against_a_missing_model_is_one_line_exit_2(run_cli: Cli, tmp_path: Path) -> None:
    cache = tmp_path / "c.cache"
    cache.write_text(make_cache("10.3.0", "entropy2", {"x": 0.1}).to_text())
    err = one_line_error(*run_cli("calib", "inspect", str(cache), "--against",
                                  str(tmp_path / "nope.onnx")))  # fmt: skip
    assert "nope.onnx" in err and "not found" in err
