"""``orinbench run``: the real command on the sample recipes (tiny, ONNX Runtime), bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _pipeline_models import CHAIN_RECIPE, chain_dir, save, unary, write

from orinbench.results.io import load_result

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
ENGINES = REPO / "engines"
QUICK = ("--iterations", "20", "--warmup", "0", "--power", "none", "--no-history")
Run = Callable[..., tuple[int, str, str]]

STAGES = {
    "bevfusion-camera": [
        "camera_backbone", "vtransform", "fuser", "head_bbox", "decode_boxes", "head_map",
    ],
    "bevdet": ["backbone", "view_transform", "bev_encoder", "head", "topk"],
    "petrv2": ["backbone", "decoder"],
}  # fmt: skip


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-cache")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_sample_recipes_run_in_ci_on_the_tiny_models(
    name: str, zoo_cache: Path, tmp_path: Path, run_cli: Run
) -> None:
    out = tmp_path / "result.json"
    code, stdout, stderr = run_cli(
        "run", str(ENGINES / f"{name}.toml"), "--size", "tiny", "--backend", "onnxruntime",
        "--cache-dir", str(zoo_cache), "--no-gate", "--out", str(out), *QUICK,
    )  # fmt: skip
    assert code == 0, stderr
    result = load_result(out)
    assert list(result.stages or {}) == STAGES[name]
    assert result.config.extra["pipeline"]["size"] == "tiny"
    metrics = result.metrics()
    for stage in STAGES[name]:
        assert f"stages.{stage}.latency.p99_ms" in metrics
    # the table shows every stage, the overhead and the frame
    for stage in STAGES[name]:
        assert f"\n{stage} " in stdout
    assert "(overhead)" in stdout and "\nframe " in stdout
    # the zoo models were generated into the cache folder, not elsewhere
    assert any(zoo_cache.rglob(f"{name}-tiny.*.onnx"))


def test_targets_pass_and_fail_set_the_exit_code(tmp_path: Path, run_cli: Run) -> None:
    chain_dir(tmp_path)
    ok = write(
        tmp_path, CHAIN_RECIPE + '[targets]\n"stages.b.latency.p99_ms" = "< 10000"\n', "ok.toml"
    )
    code, stdout, _ = run_cli("run", str(ok), *QUICK)
    assert code == 0 and "gate PASS" in stdout and "stages.b.latency.p99_ms" in stdout
    bad = write(
        tmp_path,
        CHAIN_RECIPE + '[targets]\n"latency.p99_ms" = "< 10000"\n'
        '"stages.b.latency.p50_ms" = "< 0.0000001"\n',
        "bad.toml",
    )
    code, stdout, _ = run_cli("run", str(bad), *QUICK)
    assert code == 1
    assert "gate FAIL" in stdout and "FAIL" in stdout.split("stages.b.latency.p50_ms")[1]
    code, _, _ = run_cli("run", str(bad), "--no-gate", *QUICK)
    assert code == 0


def test_the_result_gates_again_on_stage_metrics(tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "r.json"
    code, _, err = run_cli("run", str(write(chain_dir(tmp_path), CHAIN_RECIPE)), "--out", str(out),
                           *QUICK)  # fmt: skip
    assert code == 0, err
    targets = tmp_path / "t.toml"
    targets.write_text('"stages.c.latency.p99_ms" = "< 100000"\n"stages.a.share" = "<= 1"\n')
    code, stdout, _ = run_cli("gate", str(out), "--targets", str(targets))
    assert code == 0 and stdout.count("pass") >= 2


def test_json_goes_to_stdout_and_the_tables_to_stderr(tmp_path: Path, run_cli: Run) -> None:
    code, stdout, stderr = run_cli(
        "run", str(write(chain_dir(tmp_path), CHAIN_RECIPE)), "--json", *QUICK
    )
    assert code == 0
    doc = json.loads(stdout)
    assert list(doc["stages"]) == ["a", "b", "c"]
    assert "per stage" in stderr


def _one_line_error(code: int, stderr: str) -> str:
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_bad_recipes_exit_2_with_one_line_naming_the_stage(tmp_path: Path, run_cli: Run) -> None:
    chain_dir(tmp_path)
    save(unary("q", "p"), tmp_path / "p.onnx")
    save(unary("p", "q"), tmp_path / "q.onnx")
    save(unary("z", "v", shape=(1, 7)), tmp_path / "v.onnx")
    cases = {
        "cycle": ('[[stages]]\nname = "p"\nonnx = "p.onnx"\n[[stages]]\nname = "q"\n'
                  'onnx = "q.onnx"\n', ["cycle", "p -> q -> p"]),
        "no-output": (CHAIN_RECIPE.replace('onnx = "c.onnx"', 'onnx = "c.onnx"\n'
                      'inputs = { z = "b.zz" }'), ["stage 'c'", "produces no output 'zz'"]),
        "shape": (CHAIN_RECIPE + '[[stages]]\nname = "v"\nonnx = "v.onnx"\n',
                  ["stage 'v'", "input 'z'", "1x7", "1x4"]),
        "missing": (CHAIN_RECIPE.replace("b.onnx", "gone.onnx"),
                    ["stage 'b'", "not found", "gone.onnx"]),
        "unknown-key": (CHAIN_RECIPE.replace('"b.onnx"', '"b.onnx"\nprecisoin = "fp16"'),
                        ["stage 'b'", "unknown key 'precisoin'"]),
    }  # fmt: skip
    for name, (text, parts) in cases.items():
        code, _, stderr = run_cli("run", str(write(tmp_path, text, f"{name}.toml")), *QUICK)
        line = _one_line_error(code, stderr)
        assert line.startswith("orinbench: error: ")
        for part in parts:
            assert part in line, (name, part, line)


def test_a_missing_recipe_and_contradicting_flags(tmp_path: Path, run_cli: Run) -> None:
    line = _one_line_error(*run_cli("run", str(tmp_path / "nope.toml"), *QUICK)[::2])
    assert "recipe not found" in line
    recipe = str(write(chain_dir(tmp_path), CHAIN_RECIPE))
    line = _one_line_error(
        *run_cli("run", recipe, "--backend", "tensorrt", "--ort-threads", "2", *QUICK)[::2]
    )
    assert "--ort-threads" in line


def test_tensorrt_without_tensorrt_says_how_to_get_it(tmp_path: Path) -> None:
    recipe = str(write(chain_dir(tmp_path), CHAIN_RECIPE))
    blocker = (
        "import importlib.abc, sys\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorrt', 'pycuda'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "from orinbench.cli.main import main\n"
        f"sys.exit(main(['run', {recipe!r}, '--backend', 'tensorrt', '--iterations', '5', "
        "'--power', 'none', '--no-history']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    line = _one_line_error(proc.returncode, proc.stderr)
    assert "TensorRT is not installed" in line


def test_check_prints_the_wiring_without_running(tmp_path: Path, run_cli: Run) -> None:
    recipe = write(chain_dir(tmp_path), CHAIN_RECIPE)
    code, stdout, stderr = run_cli("run", str(recipe), "--check")
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "recipe chain: OK (3 stages)"
    assert "  input  x float32 1x4" in stdout
    assert "           z <- b.z" in stdout and "           x <- input.x" in stdout
    assert "  output w <- c.w" in stdout
    assert "power:" not in stderr  # nothing was probed or run
    (tmp_path / "steps.py").write_text("def f(inputs):\n    return {}\n")
    text = CHAIN_RECIPE + (
        '[[stages]]\nname = "s"\ncallable = "steps.py:g"\ninputs = { t = "c.w" }\noutputs = ["u"]\n'
    )
    line = _one_line_error(*run_cli("run", str(write(tmp_path, text, "s.toml")), "--check")[::2])
    assert "stage 's'" in line and "no function 'g'" in line


def test_inputs_npz_gives_the_frame_shapes_as_bench_takes_them(
    tmp_path: Path, run_cli: Run
) -> None:
    # found by a new user: `run --inputs x.npz` on dynamic stage models asked for --shape,
    # while `bench --inputs` reads the shapes from the file
    import numpy as np

    save(unary("x", "y", op="Mul", const=2.0, shape=("N", 4)), tmp_path / "a.onnx")
    save(unary("y", "z", op="Add", const=1.0, shape=("N", 4)), tmp_path / "b.onnx")
    recipe = write(
        tmp_path,
        '[pipeline]\nname = "dyn"\n\n[[stages]]\nname = "a"\nonnx = "a.onnx"\n\n'
        '[[stages]]\nname = "b"\nonnx = "b.onnx"\n',
    )
    code, _, err = run_cli("run", str(recipe), *QUICK)
    assert code == 2 and "--inputs" in err  # the fix names every way to give the shape
    frame = tmp_path / "frame.npz"
    np.savez(frame, x=np.ones((3, 4), np.float32))
    out = tmp_path / "r.json"
    code, _, err = run_cli("run", str(recipe), "--inputs", str(frame), "--out", str(out), *QUICK)
    assert code == 0, err
    assert load_result(out).config.shapes == {"x": (3, 4)}
    # --shape still wins, and then the data must fit it
    code, _, err = run_cli(
        "run", str(recipe), "--inputs", str(frame), "--shape", "x:2x4", "--out", str(out), *QUICK
    )
    assert code == 2 and "x" in err and "Traceback" not in err
