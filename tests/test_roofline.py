"""The Orin peak table and the roofline arithmetic."""

from __future__ import annotations

import pytest

from orinbench.model.roofline import (
    DERIVED_DENSE,
    ORIN_PEAKS,
    PUBLISHED,
    match_module,
    peak_for,
    roofline,
)


@pytest.mark.parametrize(
    ("name", "kw", "key"),
    [
        ("Jetson AGX Orin 64GB", {}, "agx-orin-64gb"),
        ("Jetson AGX Orin 32GB", {}, "agx-orin-32gb"),
        ("Jetson AGX Orin Industrial", {}, "agx-orin-industrial"),
        ("Jetson Orin NX 16GB", {}, "orin-nx-16gb"),
        ("Jetson Orin NX 8GB", {}, "orin-nx-8gb"),
        ("Jetson Orin Nano 8GB (developer kit module)", {}, "orin-nano-8gb"),
        ("Jetson Orin Nano 4GB", {}, "orin-nano-4gb"),
        # the device tree's model string has no memory size: total RAM decides
        ("NVIDIA Jetson AGX Orin Developer Kit", {"memory_gb": 61.4}, "agx-orin-64gb"),
        ("NVIDIA Jetson AGX Orin Developer Kit", {"memory_gb": 30.6}, "agx-orin-32gb"),
        ("NVIDIA Jetson Orin Nano Developer Kit", {"memory_gb": 7.4}, "orin-nano-8gb"),
        ("NVIDIA Jetson AGX Orin Developer Kit", {}, None),
        ("Jetson Orin Nano 8GB", {"power_mode": "MAXN_SUPER"}, "orin-nano-8gb-super"),
        ("Jetson Orin NX 16GB", {"power_mode": "MAXN_SUPER"}, "orin-nx-16gb-super"),
        ("Jetson Xavier NX", {}, None),
        ("NVIDIA H100 80GB HBM3", {}, None),
        (None, {}, None),
    ],
)
def test_modules_are_recognised_from_what_the_device_reports(
    name: str | None, kw: dict[str, object], key: str | None
) -> None:
    assert match_module(name, **kw) == key  # type: ignore[arg-type]


def test_every_figure_cites_its_document_and_derived_figures_say_so() -> None:
    for key, peaks in ORIN_PEAKS.items():
        assert peaks.module and key
        for field, peak in peaks.to_dict().items():
            if not isinstance(peak, dict):
                continue
            assert (
                "Data Sheet" in peak["source"]
                or "Technical Brief" in peak["source"]
                or ("User Guide" in peak["source"])
            ), (key, field)
            assert peak["basis"].startswith(("published", "derived"))
        # a dense figure derived from a sparse one is exactly half of it
        sparse, dense = peaks.gpu_int8_sparse, peaks.gpu_int8_dense
        if dense is not None and DERIVED_DENSE in dense.basis:
            assert sparse is not None and dense.value == sparse.value / 2
    # what NVIDIA prints outright is marked published
    assert ORIN_PEAKS["agx-orin-64gb"].gpu_int8_sparse.basis == PUBLISHED  # type: ignore[union-attr]
    assert ORIN_PEAKS["orin-nano-8gb"].gpu_int8_dense.basis == PUBLISHED  # type: ignore[union-attr]


def test_module_totals_are_gpu_plus_dla_as_the_data_sheets_print_them() -> None:
    # AGX Orin 64GB: 275 = 170 + 105; 32GB: 200 = 108 + 92; NX 16GB: 100; NX 8GB: 70
    totals = {
        "agx-orin-64gb": 275,
        "agx-orin-32gb": 200,
        "orin-nx-16gb": 100,
        "orin-nx-8gb": 70,
        "agx-orin-industrial": 248,
    }
    for key, total in totals.items():
        p = ORIN_PEAKS[key]
        assert p.gpu_int8_sparse is not None and p.dla_int8_sparse is not None
        assert p.gpu_int8_sparse.value + p.dla_int8_sparse.value == total


def test_unpublished_figures_are_unknown() -> None:
    for peaks in ORIN_PEAKS.values():
        assert peaks.gpu_fp16_dense is None  # no Orin data sheet prints an FP16 figure
        assert peaks.dla_int8_dense is None
    assert peak_for("orin-nx-16gb", "fp32") is None
    assert peak_for("orin-nx-16gb-super", "int8") is None
    assert peak_for(None, "int8") is None


def test_the_peak_follows_precision_engine_and_sparsity() -> None:
    assert peak_for("agx-orin-64gb", "int8").value == 85.0  # type: ignore[union-attr]
    assert peak_for("agx-orin-64gb", "best").value == 85.0  # type: ignore[union-attr]
    assert peak_for("agx-orin-64gb", "int8", sparse=True).value == 170.0  # type: ignore[union-attr]
    assert peak_for("agx-orin-64gb", "fp32").value == 5.3  # type: ignore[union-attr]
    assert peak_for("agx-orin-64gb", "fp16") is None
    assert peak_for("agx-orin-64gb", "int8", engine="dla", sparse=True).value == 105.0  # type: ignore[union-attr]
    assert peak_for("agx-orin-64gb", "fp16", engine="dla") is None


def test_roofline_arithmetic() -> None:
    # 8.5 GFLOP in 1 ms = 8.5 TFLOP/s, a tenth of the AGX Orin 64GB's dense INT8 peak
    r = roofline(8_500_000_000, 1.0, precision="int8", module="agx-orin-64gb")
    assert r.achieved_tflops == pytest.approx(8.5)
    assert r.fraction_of_peak == pytest.approx(0.1)
    assert r.peak_tflops == 85.0 and r.peak_basis == DERIVED_DENSE
    d = r.to_dict()
    assert d["gflops"] == pytest.approx(8.5) and d["module"] == "agx-orin-64gb"


def test_roofline_says_why_a_figure_is_missing() -> None:
    r = roofline(1_000_000, 2.0, precision="fp16", module="agx-orin-64gb")
    assert r.achieved_tflops == pytest.approx(5e-4) and r.fraction_of_peak is None
    assert "publishes no GPU fp16 peak" in r.note
    r = roofline(None, 2.0, precision="int8", module="agx-orin-64gb")
    assert r.achieved_tflops is None and r.fraction_of_peak is None and "FLOPs unknown" in r.note
    r = roofline(10, 1.0, precision="int8", module=None, flops_complete=False)
    assert "lower bound" in r.note and "not a known Jetson Orin module" in r.note
