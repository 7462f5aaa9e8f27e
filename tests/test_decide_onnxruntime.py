"""``decide`` on the ONNX Runtime path, for real: FP32 vs FP16 vs Q/DQ INT8 of the sample BEV
model, benchmarked and compared with the FP32 reference on the calibration set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from orinbench.accuracy.compare import guess_precision
from orinbench.bench.harness import StopRule, Warmup
from orinbench.decide import DecideOutcome, decide_model
from orinbench.errors import CalibrationError, ModelError, UsageError
from orinbench.gate.targets import parse_targets
from orinbench.zoo.sample_bev import export_sample_bev

REPO = Path(__file__).resolve().parents[1]
CALIB = REPO / "calib" / "sample_bev_tiny"
FAST = {"warmup": Warmup(seconds=0.05), "stop": StopRule(iterations=20)}


@pytest.fixture(scope="module")
def bev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_sample_bev(tmp_path_factory.mktemp("bev") / "bev.onnx", "tiny")


@pytest.fixture(scope="module")
def outcome(bev: Path, tmp_path_factory: pytest.TempPathFactory) -> DecideOutcome:
    work = tmp_path_factory.mktemp("work")
    return decide_model(bev, calib_data=CALIB, workdir=work, **FAST)  # type: ignore[arg-type]


def test_three_variants_are_made_benchmarked_and_compared(outcome: DecideOutcome) -> None:
    rows = {r.name: r for r in outcome.decision.rows}
    assert list(rows) == ["fp32", "fp16", "int8"]
    assert [v.artifact.name for v in outcome.variants] == [
        "bev.onnx",
        "bev.fp16.onnx",
        "bev.int8.onnx",
    ]
    assert guess_precision(outcome.variants[1].artifact) == "fp16"
    assert guess_precision(outcome.variants[2].artifact) == "int8"
    for r in rows.values():
        assert r.backend == "onnxruntime" and r.device == "CPU"
        assert 0 < r.p50_ms <= r.p99_ms and r.fps > 0
        assert r.energy_mj is None and r.layers_precision is None
    # FP16 weights take half the bytes
    assert rows["fp16"].size_bytes < 0.7 * rows["fp32"].size_bytes
    # the reference against itself, FP16 close, INT8 (8-bit activations) further off
    assert rows["fp32"].accuracy_loss_pct == 0.0
    assert 0.0 < rows["fp16"].accuracy_loss_pct < 1.0  # type: ignore[operator]
    assert rows["int8"].accuracy_loss_pct > rows["fp16"].accuracy_loss_pct  # type: ignore[operator]


def test_accuracy_loss_is_the_worst_relative_l2_in_percent(outcome: DecideOutcome) -> None:
    # the loop below must run for every variant (it would pass on no results at all)
    assert list(outcome.results) == ["fp32", "fp16", "int8"]
    for name, r in outcome.results.items():
        acc = r.accuracy
        assert acc is not None and acc["sample_count"] == 16
        worst = max(o["rel_l2"]["max"] for o in acc["outputs"].values())
        assert acc["loss_pct"] == pytest.approx(100.0 * worst), name
        assert r.metrics()["accuracy.loss_pct"] == acc["loss_pct"]


def test_the_decision_follows_the_default_accuracy_budget(outcome: DecideOutcome) -> None:
    d = outcome.decision
    int8 = d.row("int8")
    assert int8.accuracy_loss_pct is not None and int8.accuracy_loss_pct > 1.0
    assert not int8.eligible and "accuracy.loss_pct" in int8.failed_targets[0]
    assert f"{int8.accuracy_loss_pct:.1f} % accuracy (limit 1 %)" in d.reasons["int8"]
    assert d.chosen in ("fp32", "fp16") and d.ranked_by == "latency"
    other = "fp16" if d.chosen == "fp32" else "fp32"
    assert d.reasons[other].startswith(f"{d.row(other).label} meets the targets but its P99")
    assert outcome.exit_code == 0


def test_the_written_result_is_the_chosen_variant_with_the_table(outcome: DecideOutcome) -> None:
    r = outcome.result
    d = outcome.decision
    chosen = d.row(d.chosen)  # type: ignore[arg-type]
    assert r.config.precision == chosen.precision and r.config.extra["variant"] == chosen.name
    section = r.extra["decide"]
    assert section["chosen"] == chosen.label
    assert [row["variant"] for row in section["rows"]] == ["FP32", "FP16", "INT8"]
    assert section["target_list"] == ["accuracy.loss_pct <= 1"]
    assert section["data"].endswith("sample_bev_tiny")
    assert r.samples["latency"] and len(r.samples["latency"]) == 20


def test_targets_that_allow_int8_make_it_eligible(bev: Path, tmp_path: Path) -> None:
    targets = parse_targets('[targets]\n"accuracy.loss_pct" = "< 50"\n"latency.p99_ms" = "< 1e6"\n')
    out = decide_model(
        bev, variants=["fp32", "int8"], calib_data=CALIB, targets=targets, workdir=tmp_path, **FAST
    )  # type: ignore[arg-type]
    assert all(r.eligible for r in out.decision.rows)
    fastest = min(out.decision.rows, key=lambda r: r.p99_ms)
    assert out.decision.chosen == fastest.name


def test_repeat_benchmarks_each_variant_n_times(bev: Path, tmp_path: Path) -> None:
    out = decide_model(
        bev,
        variants=["fp32", "fp16"],
        holdout=CALIB,
        repeat=2,
        max_samples=4,
        workdir=tmp_path,
        **FAST,
    )  # type: ignore[arg-type]
    rep = out.result.extra["decide"]["repeat"]
    assert set(rep) == {"FP32", "FP16"}
    assert len(rep["FP32"]["builds"]) == 2 and rep["FP32"]["spread"]["run"]["count"] == 2
    assert out.results["fp32"].accuracy["sample_count"] == 4  # type: ignore[index]
    assert out.decision.row("fp16").repeat is not None


def _relu_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_bad_input_fails_before_anything_is_written(bev: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    relu = _relu_model(tmp_path / "relu.onnx")
    data = tmp_path / "relu_data"
    data.mkdir()
    np.savez(data / "0.npz", x=np.ones((1, 4), np.float32))
    with pytest.raises(ModelError, match=r"cannot be quantized.*no Conv"):
        decide_model(relu, calib_data=data, workdir=work, **FAST)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--repeat must be >= 1"):
        decide_model(bev, calib_data=CALIB, repeat=0, workdir=work, **FAST)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--dla needs --backend tensorrt"):
        decide_model(bev, calib_data=CALIB, dla=True, workdir=work, **FAST)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="needs --calib-data"):
        decide_model(bev, holdout=CALIB, workdir=work, **FAST)  # type: ignore[arg-type]
    with pytest.raises(CalibrationError):  # the relu model's data does not fit the BEV model
        decide_model(bev, variants=["fp32"], holdout=data, workdir=work, **FAST)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown variant 'bf16'"):
        decide_model(bev, variants=["bf16"], holdout=CALIB, workdir=work, **FAST)  # type: ignore[arg-type]
    assert not work.exists()


def test_with_power_measured_the_least_energy_decides(bev: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "telemetry"))
    from telemetry_fakes import FakeBoard

    from orinbench.telemetry.power import summarize_power
    from orinbench.telemetry.sources.sysfs import SysfsPowerSource
    from orinbench.telemetry.window import TelemetryWindow

    board = FakeBoard(tmp_path / "board", "orin-nx-16gb")
    board.set_rail("VDD_IN", mv=5000, ma=2000)  # 10 W while the variants run
    source = SysfsPowerSource(period_s=0.01, root=tmp_path / "board")
    out = decide_model(
        bev,
        variants=["fp32", "fp16"],
        holdout=CALIB,
        max_samples=2,
        workdir=tmp_path / "w",
        power=TelemetryWindow(source),
        power_summary=summarize_power,
        power_source="sysfs",
        warmup=Warmup(seconds=0.05),
        stop=StopRule(duration_s=0.3),
    )
    d = out.decision
    assert d.ranked_by == "energy"
    for r in d.rows:
        assert r.power_w == pytest.approx(10.0, abs=0.01)
        # energy per inference = mean power x measured window / inferences
        assert r.energy_mj == pytest.approx(10.0 * 1000.0 / r.fps, rel=0.02)
    assert d.chosen == min(d.rows, key=lambda r: r.energy_mj).name  # type: ignore[arg-type, return-value]
    assert "least energy per inference" in d.summary
    assert out.result.metrics()["energy.mj_per_inference"] > 0
