"""Result schema: round trips, metric names, upgrades of every past version, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orinbench.errors import ResultFormatError
from orinbench.results import SCHEMA_VERSION, load_result, result_from_dict, save_result

GOLDEN = Path(__file__).parent / "golden"


def test_every_past_version_has_a_golden_file() -> None:
    versions = sorted(int(p.stem.split("-v")[1]) for p in GOLDEN.glob("result-v*.json"))
    assert versions == list(range(SCHEMA_VERSION + 1))


@pytest.mark.parametrize("version", range(SCHEMA_VERSION + 1))
def test_golden_files_load_and_upgrade(version: int) -> None:
    r = load_result(GOLDEN / f"result-v{version}.json")
    assert r.schema_version == SCHEMA_VERSION
    assert r.samples["latency"][:3] == (10.0, 11.0, 12.0)
    assert r.metrics()["latency.p99_ms"] == pytest.approx(14.9)
    assert r.environment.backend == "onnxruntime"
    assert r.model.inputs[0].shape == (1, 3, "height", 64)


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    r = load_result(GOLDEN / f"result-v{SCHEMA_VERSION}.json")
    out = save_result(r, tmp_path / "r.json")
    again = load_result(out)
    assert again == r
    assert again.to_dict() == r.to_dict()


def test_metrics_flatten_sections() -> None:
    r = load_result(GOLDEN / f"result-v{SCHEMA_VERSION}.json")
    r = r.with_(
        power={
            "source": "sysfs",
            "mean_w": 21.5,
            "peak_w": 30.0,
            "rails": {"VDD_IN": {"mean_w": 21.5}},
            "energy": {"j": 2.0, "mj_per_inference": 40.0},
            "trace": {"t_s": [0.0], "total_w": [1.0]},
        },
        stages={"backbone": {"latency": {"p99_ms": 7.0}, "share": 0.5}},
        accuracy={"rel_l2": {"max": 0.01}},
    )
    m = r.metrics()
    assert m["power.mean_w"] == 21.5
    assert m["power.rails.VDD_IN.mean_w"] == 21.5
    assert m["energy.mj_per_inference"] == 40.0
    assert m["stages.backbone.latency.p99_ms"] == 7.0
    assert m["accuracy.rel_l2.max"] == 0.01
    assert not any(k.startswith("power.trace") for k in m)
    assert not any(".ci." in k for k in m)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    d = json.loads((GOLDEN / f"result-v{SCHEMA_VERSION}.json").read_text())
    d["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "new.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ResultFormatError, match="newer than this orinbench"):
        load_result(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not an orinbench result"),
        ('{"schema_version": 1, "environment": {}}', "corrupt"),
        ('{"schema_version": "x", "environment": {}}', "invalid schema_version"),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ResultFormatError, match=match) as info:
        load_result(p)
    assert "\n" not in str(info.value)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    src = GOLDEN / f"result-v{SCHEMA_VERSION}.json"
    p = tmp_path / "cut.json"
    p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])
    with pytest.raises(ResultFormatError, match="truncated"):
        load_result(p)


def test_save_is_atomic_when_the_value_cannot_be_encoded(tmp_path: Path) -> None:
    r = load_result(GOLDEN / f"result-v{SCHEMA_VERSION}.json")
    target = tmp_path / "r.json"
    shutil.copy(GOLDEN / f"result-v{SCHEMA_VERSION}.json", target)
    before = target.read_bytes()
    # NaN is stored as null since issue 12; an object JSON cannot hold is still refused
    bad = r.with_(extra={"x": object()})
    with pytest.raises(TypeError):
        save_result(bad, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_from_dict_rejects_non_dict() -> None:
    with pytest.raises(ResultFormatError):
        result_from_dict("hello")
