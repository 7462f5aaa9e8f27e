"""Recipe parsing: what is accepted, and one clear error naming the stage and key otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from orinbench.errors import ExitCode, RecipeError
from orinbench.pipeline.recipe import Ref, load_recipe, parse_recipe

GOOD = """
[pipeline]
name = "demo"
description = "two engines and a step"
precision = "fp16"

[inputs]
images = { shape = [1, 3, 8, 8], dtype = "float32" }

[[stages]]
name = "backbone"
onnx = "models/backbone.onnx"
precision = "int8"
calib_cache = "calib/backbone.cache"
calib_data = "calib/frames"
plugins = ["plugins/libfoo.so"]
build = { workspace_mib = 1024 }
shapes = { images = [1, 3, 8, 8] }
inputs = { images = "input.images" }

[[stages]]
name = "head"
model = "zoo:bevdet/head"

[[stages]]
name = "decode"
callable = "orinbench.pipeline.custom_steps:topk_heatmap"
inputs = { heatmap = "head.heatmap" }
outputs = ["topk_scores", "topk_index"]
args = { k = 10 }

[outputs]
scores = "decode.topk_scores"

[targets]
"latency.p99_ms" = "< 80"
stages.backbone.latency.p99_ms = "< 30"

[tolerance]
"latency.p99_ms" = "5%"
"""


def test_a_full_recipe_parses_with_paths_from_its_folder(tmp_path: Path) -> None:
    r = parse_recipe(GOOD, source="demo.toml", base_dir=tmp_path)
    assert r.name == "demo" and r.precision == "fp16"
    assert [s.name for s in r.stages] == ["backbone", "head", "decode"]
    bb, head, dec = r.stages
    assert bb.kind == "onnx" and bb.onnx == tmp_path / "models/backbone.onnx"
    assert bb.precision == "int8" and bb.calib_cache == tmp_path / "calib/backbone.cache"
    assert bb.calib_data == tmp_path / "calib/frames"
    assert bb.plugins == (tmp_path / "plugins/libfoo.so",)
    assert bb.build == {"workspace_mib": 1024} and bb.shapes == {"images": (1, 3, 8, 8)}
    assert bb.inputs == {"images": Ref(None, "images")}
    assert head.zoo == ("bevdet", "head") and head.precision == "fp16"  # the pipeline default
    assert dec.kind == "custom" and dec.outputs == ("topk_scores", "topk_index")
    assert dec.inputs == {"heatmap": Ref("head", "heatmap")} and dec.args == {"k": 10}
    assert r.inputs["images"].shape == (1, 3, 8, 8)
    assert r.outputs == {"scores": Ref("decode", "topk_scores")}
    assert r.targets is not None
    # an unquoted dotted key is a nested table in TOML: it comes back as the dotted metric name
    assert {str(t) for t in r.targets.targets} == {
        "latency.p99_ms < 80",
        "stages.backbone.latency.p99_ms < 30",
    }
    assert r.targets.tolerances == {"latency.p99_ms": pytest.approx(0.05)}


def test_tensor_names_with_dots_split_at_the_first_dot() -> None:
    assert Ref.parse("fuser.bev.feat") == Ref("fuser", "bev.feat")
    assert Ref.parse("input.images") == Ref(None, "images")
    assert str(Ref("fuser", "bev")) == "fuser.bev"


def test_load_recipe_reads_a_file_and_hashes_its_text(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text(GOOD, encoding="utf-8")
    a = load_recipe(p)
    p.write_text(GOOD + "\n# comment\n", encoding="utf-8")
    b = load_recipe(p)
    assert a.base_dir == tmp_path and a.source == str(p)
    assert a.sha256 != b.sha256 and len(a.sha256) == 64


def _error(text: str) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, source="r.toml")
    assert info.value.exit_code == ExitCode.USAGE
    msg = str(info.value)
    assert "\n" not in msg
    return msg


STAGE = '[[stages]]\nname = "bb"\nonnx = "a.onnx"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (STAGE + "precison = 'fp16'\n", ["stage 'bb'", "unknown key 'precison'", "'precision'"]),
        ("[pipline]\n" + STAGE, ["top level", "unknown key 'pipline'", "'pipeline'"]),
        (STAGE + "precision = 'fp8'\n", ["stage 'bb'", "'precision'", "fp8"]),
        ('[[stages]]\nonnx = "a.onnx"\n', ["stage #1 has no name"]),
        ('[[stages]]\nname = "bb"\n', ["stage 'bb'", "exactly one of", "found none"]),
        (STAGE + 'callable = "m:f"\n', ["stage 'bb'", "'onnx' and 'callable'"]),
        ('[[stages]]\nname = "b.b"\nonnx = "a.onnx"\n', ["stage 'b.b'", "'name'"]),
        ('[[stages]]\nname = "input"\nonnx = "a.onnx"\n', ["stage 'input'", "reserved"]),
        (STAGE + STAGE, ["stage 'bb' is defined twice"]),
        (STAGE + 'inputs = { x = "nope.y" }\n', ["stage 'bb'", "inputs.x", "no stage 'nope'"]),
        (STAGE + 'inputs = { x = "justaname" }\n', ["stage 'bb'", "inputs.x", "not a tensor"]),
        (STAGE + 'model = "zoo:x/y"\n', ["stage 'bb'", "'onnx' and 'model'"]),
        ('[[stages]]\nname = "bb"\nmodel = "bevdet/head"\n', ["stage 'bb'", "not a zoo reference"]),
        (STAGE + 'calib_data = "d"\n', ["stage 'bb'", "'calib_data'", "precision is fp32"]),
        (STAGE + 'outputs = ["y"]\n', ["stage 'bb'", "'outputs'", "custom (callable) stages only"]),
        (
            '[[stages]]\nname = "s"\ncallable = "m:f"\ninputs = { a = "input.a" }\n',
            ["stage 's'", "'outputs'"],
        ),
        (
            '[[stages]]\nname = "s"\ncallable = "m:f"\noutputs = ["y"]\n',
            ["stage 's'", "'inputs' is missing"],
        ),
        (
            '[[stages]]\nname = "s"\ncallable = "no-colon"\noutputs = ["y"]\n'
            'inputs = {a="input.a"}\n',
            ["stage 's'", "'callable'"],
        ),
        (
            '[[stages]]\nname = "s"\ncallable = "m:f"\noutputs = ["y"]\ninputs = {a="input.a"}\n'
            'precision = "int8"\n',
            ["stage 's'", "'precision' applies to ONNX stages only"],
        ),
        (STAGE + '[targets]\n"latency.p99_ms" = "about 80"\n', ["latency.p99_ms", "operator"]),
        (
            STAGE + '[targets]\n"stages.bbb.latency.p99_ms" = "< 3"\n',
            ["stages.bbb.latency.p99_ms", "stage 'bbb'", "did you mean 'stages.bb"],
        ),
        (STAGE + '[outputs]\ny = "input.x"\n', ["[outputs]", "frame input"]),
        (STAGE + '[inputs]\nx = { shape = [1, "a"] }\n', ["[inputs]: 'x'", "'shape'"]),
        (
            STAGE + "[inputs]\nx = { shape = [1], kind = 2 }\n",
            ["[inputs]: 'x'", "unknown key 'kind'"],
        ),
        (STAGE + "build = { workspace = 3 }\n", ["stage 'bb': build", "unknown key 'workspace'"]),
        ("", ["no stages"]),
        ("stages = 3\n", ["'stages' must be an array of tables"]),
        (STAGE + "this is = not toml\n", ["not valid TOML"]),
    ],
)
def test_bad_recipes_give_one_line_naming_the_stage_and_key(text: str, expected: list[str]) -> None:
    msg = _error(text)
    assert msg.startswith("r.toml")
    for part in expected:
        assert part in msg, (part, msg)


def test_build_keys_are_the_tensorrt_builders_options() -> None:
    import dataclasses

    from orinbench.backends.tensorrt import BuildOptions
    from orinbench.pipeline.recipe import BUILD_KEYS

    fields = {f.name for f in dataclasses.fields(BuildOptions)}
    assert set(BUILD_KEYS) <= fields
    # the rest have stage keys of their own
    assert fields - set(BUILD_KEYS) == {
        "precision",
        "plugins",
        "shapes",
        "calib_cache",
        "calib_data",
        # one optimization profile per concurrent context (TensorRT < 9): follows from --streams
        # and --profile-layers; a pipeline stage runs one context
        "contexts",
    }
