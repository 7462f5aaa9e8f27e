"""The precision decision on rows of known shape: ranking, fallback, reasons, targets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orinbench.decide.logic import (
    DEFAULT_MAX_LOSS_PCT,
    RANK_ENERGY,
    RANK_LATENCY,
    VariantRow,
    _pct_less,
    decide,
    effective_targets,
    p99_indistinguishable,
    target_failures,
)
from orinbench.decide.table import format_table
from orinbench.gate.targets import parse_targets
from orinbench.results.schema import Environment, ModelRef, Result, RunConfig


def row(name: str, p99: float, **kw: Any) -> VariantRow:
    labels = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8", "dla-fp16": "DLA FP16"}
    base: dict[str, Any] = {
        "name": name,
        "label": labels[name],
        "backend": "tensorrt",
        "precision": name.removeprefix("dla-"),
        "device": "DLA+GPU" if "dla" in name else "GPU",
        "p50_ms": p99 * 0.9,
        "p99_ms": p99,
        "fps": 1000.0 / p99,
        "size_bytes": 1_000_000,
        "accuracy_loss_pct": 0.0,
    }
    base.update(kw)
    return VariantRow(**base)


def test_least_energy_wins_even_when_slower() -> None:
    rows = [
        row("fp32", 10.0, energy_mj=50.0),
        row("fp16", 6.0, energy_mj=30.0),
        row("int8", 5.5, energy_mj=33.0, accuracy_loss_pct=0.4),
    ]
    d = decide(rows)
    assert d.ranked_by == RANK_ENERGY and d.chosen == "fp16"
    assert "least energy per inference (30 mJ" in d.summary
    assert d.reasons["int8"] == (
        "INT8 meets the targets but needs 10 % more energy per inference than FP16 (33 vs 30 mJ)"
    )
    assert "67 % more energy" in d.reasons["fp32"]


def test_latency_decides_when_power_is_unknown() -> None:
    rows = [row("fp32", 10.0), row("fp16", 6.0, energy_mj=30.0), row("int8", 5.0)]
    d = decide(rows)
    assert d.ranked_by == RANK_LATENCY and d.chosen == "int8"
    assert "power was not measured" in d.summary
    assert (
        d.reasons["fp16"] == "FP16 meets the targets but its P99 is 20 % higher than INT8's "
        "(6 vs 5 ms)"
    )


def test_a_faster_variant_that_loses_accuracy_says_so() -> None:
    rows = [
        row("fp16", 6.0),
        row(
            "int8",
            5.82,
            accuracy_loss_pct=4.1,
            failed_targets=("accuracy.loss_pct = 4.1 (target <= 1)",),
            accuracy_failed=((1.0, 4.1),),
        ),
    ]
    d = decide(rows)
    assert d.chosen == "fp16"
    assert (
        d.reasons["int8"] == "INT8 is 3 % faster than FP16 (P99) but loses 4.1 % accuracy "
        "(limit 1 %)"
    )


def test_a_slower_variant_that_misses_another_target_lists_it() -> None:
    rows = [row("fp16", 6.0), row("fp32", 9.0, failed_targets=("latency.p99_ms = 9 (target < 8)",))]
    d = decide(rows)
    assert d.reasons["fp32"] == "FP32 misses latency.p99_ms = 9 (target < 8)"


def test_no_eligible_variant_chooses_none() -> None:
    rows = [
        row("fp32", 9.0, failed_targets=("latency.p99_ms = 9 (target < 1)",)),
        row("fp16", 6.0, failed_targets=("latency.p99_ms = 6 (target < 1)",)),
    ]
    d = decide(rows)
    assert d.chosen is None and d.summary == "No variant meets the targets."
    assert set(d.reasons) == {"fp32", "fp16"}
    assert d.to_dict()["chosen"] is None
    assert [r["chosen"] for r in d.to_dict()["rows"]] == [False, False]


def test_ties_go_to_the_lower_accuracy_loss() -> None:
    rows = [row("int8", 5.0, accuracy_loss_pct=0.8), row("fp16", 5.0, accuracy_loss_pct=0.1)]
    assert decide(rows).chosen == "fp16"


def test_observations_int8_no_faster_and_dla_fallback() -> None:
    rows = [
        row("fp16", 5.0),
        row("int8", 5.2),
        row("dla-fp16", 8.0, dla_fallback_layers=41, network_layers=120, reformat_layers=6),
    ]
    d = decide(rows)
    assert "INT8 is no faster than FP16 (P99 5.2 vs 5 ms)" in d.observations
    assert "DLA FP16 falls back to the GPU on 41 of 120 layers" in d.observations
    assert "DLA FP16 has 6 reformat layer(s)" in d.observations


def test_a_dla_variant_mostly_on_the_gpu_is_called_out() -> None:
    rows = [
        row("fp16", 5.0),
        row("dla-fp16", 6.0, dla_fallback_layers=70, network_layers=120, dla_mostly_gpu=True),
    ]
    d = decide(rows)
    (line,) = [o for o in d.observations if o.startswith("DLA FP16")]
    assert line == (
        "DLA FP16 runs mostly on the GPU (70 of 120 layers fell back, or none landed on the "
        "DLA): its figures are GPU figures, not DLA ones"
    )
    assert d.rows[1].to_dict()["dla_mostly_gpu"] is True
    assert d.rows[0].to_dict()["dla_mostly_gpu"] is None


def test_rows_and_table_for_the_reports() -> None:
    rows = [
        row(
            "fp32",
            10.0,
            layers_precision={"FP32": 40},
            layers_device={"GPU": 40},
            reformat_layers=0,
        ),
        row(
            "fp16",
            6.0,
            layers_precision={"FP16": 38, "FP32": 2},
            layers_device={"GPU": 40},
            reformat_layers=2,
        ),
    ]
    d = decide(rows)
    out = d.to_dict()
    assert out["chosen"] == "FP16" and out["ranked_by"] == RANK_LATENCY
    r16 = out["rows"][1]
    assert r16["layers_precision"] == "FP16:38 FP32:2" and r16["chosen"] is True
    assert all(not isinstance(v, (dict, list)) for r in out["rows"] for v in r.values())
    text = format_table(d)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["variant", "device", "P50"]
    assert any(ln.startswith("* FP16") and "FP16:38 FP32:2" in ln for ln in lines)
    assert any(ln.startswith("  FP32") for ln in lines)
    assert d.summary in text and d.reasons["fp32"] + "." in text


def _result(accuracy_loss: float | None, p99: float = 5.0) -> Result:
    return Result(
        tool_version="0",
        created_utc="",
        samples={},
        throughput={"fps": 200.0},
        stats={"latency": {"p50_ms": p99 * 0.9, "p99_ms": p99}},
        environment=Environment("h", "c", "o", "p", "onnxruntime", "1"),
        model=ModelRef("m.onnx", "0", (), ()),
        config=RunConfig(backend="onnxruntime"),
        accuracy=None
        if accuracy_loss is None
        else {"loss_pct": accuracy_loss, "rel_l2": {"max": accuracy_loss / 100}},
    )


def test_default_accuracy_budget_only_without_an_accuracy_target() -> None:
    t = effective_targets(None, max_loss_pct=DEFAULT_MAX_LOSS_PCT)
    assert [str(x) for x in t.targets] == ["accuracy.loss_pct <= 1"]
    own = parse_targets('"latency.p99_ms" = "< 8"\n"accuracy.rel_l2.max" = "< 0.05"\n')
    assert effective_targets(own, max_loss_pct=1.0).targets == own.targets
    assert effective_targets(None, max_loss_pct=None).targets == ()


def test_target_failures_name_value_and_missing_metrics() -> None:
    targets = effective_targets(
        parse_targets('"latency.p99_ms" = "< 8"\n"power.mean_w" = "< 30"\n'), max_loss_pct=1.0
    )
    failed, acc = target_failures(_result(4.1, p99=9.0), targets)
    assert failed == [
        "latency.p99_ms = 9 (target < 8)",
        "power.mean_w not measured",
        "accuracy.loss_pct = 4.1 (target <= 1)",
    ]
    assert acc == [(1.0, 4.1)]
    failed, acc = target_failures(_result(0.2, p99=5.0), effective_targets(None, max_loss_pct=1.0))
    assert failed == [] and acc == []


def test_duplicate_or_missing_rows_are_refused() -> None:
    with pytest.raises(ValueError):
        decide([])
    with pytest.raises(ValueError):
        decide([row("fp16", 1.0), row("fp16", 2.0)])


def test_a_p99_within_noise_is_a_tie_won_by_the_lower_loss() -> None:
    # FP16's P99 point estimate is lower, but the intervals overlap: no real speed-up
    rows = [
        row("fp32", 3.97, p99_ci=(3.2, 4.6), accuracy_loss_pct=0.0),
        row("fp16", 3.41, p99_ci=(3.0, 4.0), accuracy_loss_pct=0.11),
    ]
    d = decide(rows)
    assert d.chosen == "fp32"
    assert "within the measurement noise" in d.reasons["fp16"]
    assert "FP16's lower P99" in d.summary


def test_a_slower_p99_within_noise_is_not_called_slower() -> None:
    rows = [
        row("fp32", 3.0, p99_ci=(2.5, 3.9), accuracy_loss_pct=0.0),
        row("fp16", 3.6, p99_ci=(3.1, 4.2), accuracy_loss_pct=0.11),
    ]
    d = decide(rows)
    assert d.chosen == "fp32"
    assert "higher" not in d.reasons["fp16"]
    assert "within the measurement noise" in d.reasons["fp16"]


def test_a_p99_beyond_noise_still_wins() -> None:
    rows = [
        row("fp32", 4.0, p99_ci=(3.8, 4.2), accuracy_loss_pct=0.0),
        row("fp16", 2.0, p99_ci=(1.9, 2.1), accuracy_loss_pct=0.11),
    ]
    d = decide(rows)
    assert d.chosen == "fp16"
    assert "P99 is 100 % higher" in d.reasons["fp32"]


def test_without_intervals_the_point_estimate_ranks() -> None:
    rows = [row("fp32", 3.97, accuracy_loss_pct=0.0), row("fp16", 3.41, accuracy_loss_pct=0.11)]
    assert decide(rows).chosen == "fp16"


# -- pinned by mutation testing (benchmarks/mutate.py) ------------------------------------------


def test_latency_ranking_never_mixes_energy_into_the_key() -> None:
    # FP16 has energy, INT8 has none: latency decides, and FP16's 1 mJ must not be compared
    # with INT8's 5 ms
    rows = [row("int8", 5.0), row("fp16", 6.0, energy_mj=1.0)]
    d = decide(rows)
    assert d.ranked_by == RANK_LATENCY and d.chosen == "int8"


def test_one_variant_without_a_p99_interval_is_ranked_on_the_point_estimate() -> None:
    rows = [
        row("fp32", 3.97, p99_ci=(3.2, 4.6), accuracy_loss_pct=0.0),
        row("fp16", 3.41, accuracy_loss_pct=0.11),  # too short a run for an interval
    ]
    d = decide(rows)
    assert d.chosen == "fp16"
    assert d.reasons["fp32"] == (
        "FP32 meets the targets but its P99 is 16 % higher than FP16's (3.97 vs 3.41 ms)"
    )


def test_p99_intervals_that_touch_overlap() -> None:
    a = row("fp32", 4.0, p99_ci=(3.0, 4.0))
    b = row("fp16", 4.5, p99_ci=(4.0, 5.0))
    assert p99_indistinguishable(a, b) is True and p99_indistinguishable(b, a) is True
    c = row("int8", 5.5, p99_ci=(4.01, 6.0))
    assert p99_indistinguishable(a, c) is False and p99_indistinguishable(c, a) is False
    assert p99_indistinguishable(a, row("fp16", 4.0)) is False
    assert p99_indistinguishable(row("fp16", 4.0), a) is False


def test_the_tie_sentence_names_both_losses() -> None:
    rows = [
        row("fp32", 3.97, p99_ci=(3.2, 4.6), accuracy_loss_pct=0.0),
        row("fp16", 3.41, p99_ci=(3.0, 4.0), accuracy_loss_pct=0.11),
    ]
    assert decide(rows).reasons["fp16"] == (
        "FP16 meets the targets and its P99 (3.41 ms) is within the measurement noise of FP32's "
        "(3.97 ms; the 95 % intervals overlap), so the tie goes to FP32, which loses less accuracy "
        "(0.00 vs 0.11 %) or has the lower P50"
    )
    # an unknown loss ranks last, and reads "nan"
    rows = [
        row("fp32", 3.97, p99_ci=(3.2, 4.6), accuracy_loss_pct=0.2),
        row("fp16", 3.41, p99_ci=(3.0, 4.0), accuracy_loss_pct=None),
    ]
    d = decide(rows)
    assert d.chosen == "fp32" and "(0.20 vs nan %)" in d.reasons["fp16"]


def test_an_ineligible_variant_with_less_energy_says_how_much() -> None:
    rows = [
        row("fp16", 6.0, energy_mj=30.0),
        row(
            "int8",
            6.5,  # slower, but more frugal
            energy_mj=18.0,
            failed_targets=("accuracy.loss_pct = 4.1 (target <= 1)",),
            accuracy_failed=((1.0, 4.1),),
        ),
        # as much energy as FP16: the energy sentence does not apply, the faster one does
        row("fp32", 5.0, energy_mj=30.0, failed_targets=("size_bytes = 9 (target < 1)",)),
    ]
    d = decide(rows)
    assert d.ranked_by == RANK_ENERGY and d.chosen == "fp16"
    assert d.reasons["int8"] == (
        "INT8 needs 40 % less energy per inference than FP16 but loses 4.1 % accuracy (limit 1 %)"
    )
    assert d.reasons["fp32"] == (
        "FP32 is 17 % faster than FP16 (P99) but misses size_bytes = 9 (target < 1)"
    )
    assert set(d.reasons) == {"int8", "fp32"}  # never a reason for the chosen one


def test_less_energy_does_not_count_when_latency_ranks() -> None:
    rows = [
        row("fp16", 6.0),  # no energy: latency ranks
        row("int8", 7.0, energy_mj=1.0, failed_targets=("x = 1 (target < 0)",)),
    ]
    d = decide(rows)
    assert d.ranked_by == RANK_LATENCY
    assert d.reasons["int8"] == "INT8 misses x = 1 (target < 0)"


def test_an_ineligible_variant_as_fast_as_the_chosen_one_is_not_called_faster() -> None:
    rows = [row("fp16", 6.0), row("fp32", 6.0, failed_targets=("x = 1 (target < 0)",))]
    assert decide(rows).reasons["fp32"] == "FP32 misses x = 1 (target < 0)"


def test_accuracy_and_other_misses_are_all_listed() -> None:
    failed = ("latency.p99_ms = 9 (target < 8)", "accuracy.loss_pct = 4.1 (target <= 1)")
    rows = [
        row("fp16", 6.0),
        row("int8", 9.0, failed_targets=failed, accuracy_failed=((1.0, 4.1),)),
    ]
    assert decide(rows).reasons["int8"] == "INT8 misses " + "; ".join(failed)


def test_percentages_against_a_zero_figure() -> None:
    assert _pct_less(1.0, 0.0) == 0.0 and _pct_less(1.0, 4.0) == 75.0
    d = decide([row("fp16", 6.0, energy_mj=0.0), row("fp32", 9.0, energy_mj=2.0)])
    assert d.reasons["fp32"] == (
        "FP32 meets the targets but needs 0 % more energy per inference than FP16 (2 vs 0 mJ)"
    )
    d = decide([dataclasses.replace(row("fp16", 1.0), p99_ms=0.0), row("fp32", 1.0)])
    assert d.reasons["fp32"] == (
        "FP32 meets the targets but its P99 is 0 % higher than FP16's (1 vs 0 ms)"
    )


def test_summary_when_no_variant_has_power() -> None:
    d = decide([row("fp16", 6.0), row("fp32", 9.0)])
    assert d.summary == (
        "FP16 is chosen: it meets the targets with the lowest P99 latency (6 ms); "
        "power was not measured, so latency decides."
    )


def test_observations_exactly() -> None:
    rows = [
        row("fp16", 5.0),
        row("int8", 5.0),  # as slow as FP16: no faster
        row("fp32", 9.0),
        # DLA: no fallback count, but the engine's layers say where they run
        row(
            "dla-fp16",
            8.0,
            dla_fallback_layers=3,
            network_layers=None,
            layers_device={"DLA": 30, "GPU": 3},
        ),
    ]
    assert decide(rows).observations == (
        "INT8 is no faster than FP16 (P99 5 vs 5 ms)",
        "DLA FP16 runs 3 of 33 engine layers on the GPU",
    )
    # an INT8 variant without an FP16 one to compare with: nothing to say
    assert decide([row("int8", 5.0), row("fp32", 9.0)]).observations == ()


def test_row_dict_failed_targets_and_unknown_row() -> None:
    r = row("fp16", 6.0, failed_targets=("a = 1 (target < 0)", "b = 2 (target < 0)"))
    assert r.to_dict()["failed_targets"] == "a = 1 (target < 0); b = 2 (target < 0)"
    assert row("fp16", 6.0).to_dict()["failed_targets"] is None
    d = decide([row("fp16", 6.0)])
    with pytest.raises(KeyError):
        d.row("int8")
