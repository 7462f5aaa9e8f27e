"""Issue 12, the output side: what orinbench writes, where, and with which guarantees.

Every test builds its own model or file (an opset-11 conv model, weights inside If branches,
dynamic H/W, a NaN result ...) and checks behaviour that failed before the fix.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from _gate_results import make_result
from onnx import TensorProto, helper, numpy_helper

from orinbench._io import (
    DEAD_WRITER_AGE_S,
    STALE_TEMP_AGE_S,
    atomic_write_text,
    check_output_path,
    sweep_stale_temp_files,
)
from orinbench.errors import UsageError
from orinbench.results.io import load_result, save_result
from orinbench.results.schema import Result

Run = Callable[..., tuple[int, str, str]]


# ------------------------------------------------------------------------------------------
# item 12 (part): file mode follows the umask; stale temporary files are swept


def test_new_output_file_gets_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "r.json", "{}")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o002)
        q = atomic_write_text(tmp_path / "q.json", "{}")
        assert stat.S_IMODE(q.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text("old")
    p.chmod(0o640)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640


def _dead_pid() -> int:
    pid = 2**22 - 7  # above the default pid_max range of most systems; checked below
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid -= 1


def test_stale_temp_files_are_swept_on_the_next_write(tmp_path: Path) -> None:
    now = time.time()
    dead = _dead_pid()
    # left by a writer killed with -9 a few minutes ago
    dead_old = tmp_path / f".a.json.ob{dead}.abcd1234.tmp"
    # very old, its pid now alive (reused): stale by age
    ancient = tmp_path / f".b.json.ob{os.getppid()}.efgh5678.tmp"
    # a live writer (our parent, alive) that started seconds ago: never touched
    live = tmp_path / f".c.json.ob{os.getppid()}.ijkl9012.tmp"
    # a dead writer's file, but only seconds old (another pid namespace mid-rename): kept
    fresh_dead = tmp_path / f".d.json.ob{dead}.mnop3456.tmp"
    # not orinbench's pattern at all: kept however old
    foreign = tmp_path / ".e.json.xyz.tmp"
    # the pid-less pattern of older orinbench versions, for the target being written: swept by age
    legacy = tmp_path / ".r.json.qrst7890.tmp"
    for f in (dead_old, ancient, live, fresh_dead, foreign, legacy):
        f.write_text("partial")
    os.utime(dead_old, (now - DEAD_WRITER_AGE_S - 60, now - DEAD_WRITER_AGE_S - 60))
    for f in (ancient, foreign, legacy):
        os.utime(f, (now - STALE_TEMP_AGE_S - 60, now - STALE_TEMP_AGE_S - 60))
    atomic_write_text(tmp_path / "r.json", "{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["r.json", live.name, fresh_dead.name, foreign.name])


def test_sweep_keeps_a_live_writers_file_however_old(tmp_path: Path) -> None:
    live = tmp_path / f".x.ob{os.getpid()}.abcd1234.tmp"
    live.write_text("mine")
    # age alone makes it stale after STALE_TEMP_AGE_S (a pid can be reused); below that, a live
    # pid keeps it
    assert sweep_stale_temp_files(tmp_path, now=time.time() + STALE_TEMP_AGE_S - 5) == []
    assert live.exists()


def test_temp_file_name_carries_the_writer_pid(tmp_path: Path) -> None:
    from orinbench._io import atomic_open

    with atomic_open(tmp_path / "e.bin") as fh:
        fh.write(b"x")
        names = [p.name for p in tmp_path.iterdir()]
        assert len(names) == 1 and names[0].startswith(f".e.bin.ob{os.getpid()}.")
    assert [p.name for p in tmp_path.iterdir()] == ["e.bin"]


# ------------------------------------------------------------------------------------------
# item 8 (NaN part): non-finite numbers in results


def _nan_result_file(tmp_path: Path, *, nan_sample: bool = True) -> Path:
    """A result as an older orinbench (or a hand edit) wrote it: bare NaN tokens in it."""
    r = make_result(n=50)
    d = r.to_dict()
    d["stats"]["latency"]["cv"] = float("nan")
    d["throughput"]["fps"] = float("inf")
    if nan_sample:
        d["samples"]["latency"][3] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(d, allow_nan=True))
    assert "NaN" in path.read_text()
    return path


def test_baseline_record_of_a_nan_result_stores_null(run_cli: Run, tmp_path: Path) -> None:
    src = _nan_result_file(tmp_path)
    code, out, err = run_cli(
        "baseline", "record", str(src), "--to", str(tmp_path / "bl"), "--allow-imprecise"
    )
    assert code == 0, err
    stored = Path(out.split("baseline recorded: ", 1)[1].strip())
    text = stored.read_text()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)  # strict JSON now
    assert d["stats"]["latency"]["cv"] is None and d["throughput"]["fps"] is None
    back = load_result(stored)
    assert math.isnan(back.samples["latency"][3])
    assert "throughput.fps" not in back.metrics()


def test_gate_history_append_of_a_nan_result(run_cli: Run, tmp_path: Path) -> None:
    src = _nan_result_file(tmp_path, nan_sample=False)
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"latency.p99_ms" = "< 1000"\n')
    db = tmp_path / "h.db"
    code, _, err = run_cli("gate", str(src), "--targets", str(targets), "--history", str(db))
    assert code == 0, err
    from orinbench.history.store import HistoryStore

    with HistoryStore(db) as store:
        rows = store.query()
    assert len(rows) == 1 and rows[0].summary["throughput"]["fps"] is None


def test_gate_refuses_nan_latency_samples_in_one_line(run_cli: Run, tmp_path: Path) -> None:
    src = _nan_result_file(tmp_path)
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"latency.p99_ms" = "< 1000"\n')
    code, _, err = run_cli("gate", str(src), "--targets", str(targets), "--no-history")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "NaN" in err


def test_save_result_never_writes_nan(tmp_path: Path) -> None:
    r = make_result(n=20)
    r = r.with_(throughput={**r.throughput, "fps": float("nan")})
    text = save_result(r, tmp_path / "x.json").read_text()
    assert json.loads(text)["throughput"]["fps"] is None


# ------------------------------------------------------------------------------------------
# items 5 and 6: an output that is an input is refused; outputs are checked before the work


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_quantize_out_onto_its_own_model_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    before = conv_model.read_bytes()
    data = _calib_data(tmp_path)  # real data: the old code quantized and replaced the model
    code, _, err = run_cli(
        "quantize", str(conv_model), "--data", str(data), "--out", str(conv_model)
    )
    assert code == 2 and "input" in _one_line(err)
    assert conv_model.read_bytes() == before


def test_bench_out_onto_its_model_is_refused(run_cli: Run, conv_model: Path) -> None:
    before = conv_model.read_bytes()
    code, _, err = run_cli("bench", str(conv_model), "--iterations", "5", "--out", str(conv_model))
    assert code == 2 and "input" in _one_line(err)
    assert conv_model.read_bytes() == before


def test_an_input_reached_through_a_link_is_refused(
    run_cli: Run, conv_model: Path, tmp_path: Path
) -> None:
    hard = tmp_path / "hard.onnx"
    os.link(conv_model, hard)
    soft = tmp_path / "soft.onnx"
    soft.symlink_to(conv_model)
    dotted = tmp_path / "sub" / ".." / conv_model.name
    (tmp_path / "sub").mkdir()
    before = conv_model.read_bytes()
    for out in (hard, soft, dotted):
        code, _, err = run_cli("bench", str(conv_model), "--iterations", "5", "--out", str(out))
        assert code == 2 and "input" in _one_line(err), out
    assert conv_model.read_bytes() == before


def test_report_html_onto_a_result_is_refused(run_cli: Run, tmp_path: Path) -> None:
    res = tmp_path / "r.json"
    save_result(make_result(n=50), res)
    before = res.read_bytes()
    code, _, err = run_cli("report", str(res), "--html", str(res))
    assert code == 2 and "input" in _one_line(err)
    assert res.read_bytes() == before


@pytest.mark.parametrize("case", ["folder", "parent-is-a-file", "same-as-engine-out"])
def test_bad_out_is_refused_before_the_benchmark(
    run_cli: Run, conv_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    import orinbench.cli.bench as bench_cli

    def no_work(*a: object, **k: object) -> None:
        raise AssertionError("the benchmark ran before the output path was checked")

    monkeypatch.setattr(bench_cli, "bench_model", no_work)
    extra: list[str] = []
    if case == "folder":
        out = tmp_path / "a-folder"
        out.mkdir()
    elif case == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "r.json"
    else:
        out = tmp_path / "same"
        extra = ["--engine-out", str(out)]
    code, _, err = run_cli("bench", str(conv_model), "--out", str(out), *extra)
    line = _one_line(err)
    assert code == 2 and ("cannot write" in line or "same file" in line)


def test_unwritable_out_folder_is_refused_before_quantizing(
    run_cli: Run, conv_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() == 0:
        # root may write into a 0500 folder; a read-only mount refuses even root
        ro = Path("/proc/sys/orinbench-test")
        if os.access("/proc/sys", os.W_OK):
            pytest.skip("root, and no read-only folder to try")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
    import orinbench.precision.qdq as qdq

    monkeypatch.setattr(qdq, "run_quantize", lambda *a, **k: pytest.fail("quantized first"))
    code, _, err = run_cli(
        "quantize", str(conv_model), "--data", str(tmp_path), "--out", str(ro / "m.qdq.onnx")
    )
    assert code == 2 and "cannot write" in _one_line(err)


def test_check_output_path_accepts_a_new_file_in_a_new_folder(tmp_path: Path) -> None:
    p = check_output_path(tmp_path / "new" / "deeper" / "r.json", inputs=[tmp_path / "m.onnx"])
    assert p.name == "r.json" and not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(UsageError, match="not a folder"):
        (tmp_path / "f").write_text("x")
        check_output_path(tmp_path / "f", folder=True, flag="--to")


# ------------------------------------------------------------------------------------------
# item 1: quantize on opset < 13; every written model is checked before success


def _old_opset_conv(tmp_path: Path, opset: int) -> Path:
    from conftest import make_conv_model

    m = make_conv_model(channels=4, size=16)
    m.opset_import[0].version = opset
    m.ir_version = 6
    onnx.checker.check_model(m)
    path = tmp_path / f"conv{opset}.onnx"
    onnx.save(m, path)
    return path


def _calib_data(tmp_path: Path, shape: tuple[int, ...] = (1, 3, 16, 16)) -> Path:
    from orinbench.calib.dataset import write_sample

    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        write_sample(folder / f"{i}.npz", {"x": rng.standard_normal(shape).astype(np.float32)})
    return folder


def _loads_in_ort(path: Path) -> None:
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("opset", [11, 12])
def test_quantize_old_opset_writes_a_model_that_loads(
    run_cli: Run, tmp_path: Path, opset: int
) -> None:
    model = _old_opset_conv(tmp_path, opset)
    before = model.read_bytes()
    out = tmp_path / "q.onnx"
    code, stdout, err = run_cli(
        "quantize", str(model), "--data", str(_calib_data(tmp_path)), "--out", str(out)
    )
    assert code == 0, err
    q = onnx.load(out)
    onnx.checker.check_model(q)
    _loads_in_ort(out)  # failed with INVALID_GRAPH ('axis' on QuantizeLinear at opset 11/12)
    assert any(o.version >= 13 for o in q.opset_import if o.domain in ("", "ai.onnx"))
    axes = [a.i for n in q.graph.node if n.op_type == "DequantizeLinear" for a in n.attribute]
    assert axes == [0]  # still per-channel
    assert f"from opset {opset} to 13" in stdout
    assert model.read_bytes() == before  # the user's model is not upgraded in place


def test_quantize_falls_back_to_per_tensor_when_the_upgrade_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnx import version_converter

    from orinbench.precision.qdq import run_quantize

    def refuse(*a: object, **k: object) -> None:
        raise RuntimeError("no adapter for op X")

    monkeypatch.setattr(version_converter, "convert_version", refuse)
    model = _old_opset_conv(tmp_path, 11)
    out = tmp_path / "q.onnx"
    run = run_quantize(model, data=_calib_data(tmp_path), out_path=out)
    _loads_in_ort(out)
    assert any("per-tensor" in n and "no adapter" in n for n in run.notes)
    assert all(
        not n.attribute for n in onnx.load(out).graph.node if n.op_type == "DequantizeLinear"
    )


def test_a_written_model_that_fails_the_check_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old behaviour forced back: no upgrade, per-channel on opset 11 -> refused, no file."""
    import orinbench.precision.qdq as qdq
    from orinbench.errors import ModelError

    monkeypatch.setattr(qdq, "upgrade_for_qdq", lambda m, *, per_channel, source: (m, True, None))
    model = _old_opset_conv(tmp_path, 11)
    out = tmp_path / "q.onnx"
    with pytest.raises(ModelError, match="nothing was written") as info:
        qdq.quantize_qdq(model, data=_calib_data(tmp_path), out_path=out)
    assert "axis" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv11.onnx", "data"]


def test_fp16_output_is_checked_before_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orinbench.precision.fp16 as fp16
    from orinbench.errors import ModelError

    model = _old_opset_conv(tmp_path, 11)
    ok = fp16.convert_to_fp16(model, tmp_path / "ok.onnx")
    _loads_in_ort(ok)

    def broken(m: onnx.ModelProto, **k: object) -> onnx.ModelProto:
        bad = onnx.ModelProto.FromString(m.SerializeToString())
        bad.graph.node[0].input[1] = "no_such_weight"
        return bad

    monkeypatch.setattr(fp16, "convert_model_to_fp16", broken)
    with pytest.raises(ModelError, match="nothing was written"):
        fp16.convert_to_fp16(model, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


# ------------------------------------------------------------------------------------------
# item 10: success claimed for nothing


def _if_model(tmp_path: Path, *, then_ch: int = 8, else_ch: int = 4) -> Path:
    """x -> If(mean(x) > 0) with a Conv and its weights inside each branch; none outside."""

    def branch(name: str, seed: int, ch: int) -> onnx.GraphProto:
        r = np.random.default_rng(seed)
        w = numpy_helper.from_array(
            r.standard_normal((ch, 3, 3, 3)).astype(np.float32), f"w_{name}"
        )
        n = helper.make_node(
            "Conv", ["x", f"w_{name}"], [f"y_{name}"], pads=[1, 1, 1, 1], name=f"conv_{name}"
        )
        out = helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None)
        return helper.make_graph([n], name, [], [out], initializer=[w])

    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"),
        helper.make_node("Greater", ["m", "zero"], ["cond"], name="gt"),
        helper.make_node(
            "If",
            ["cond"],
            ["y"],
            then_branch=branch("then", 1, then_ch),
            else_branch=branch("else", 2, else_ch),
            name="select",
        ),
    ]
    g = helper.make_graph(
        nodes,
        "ifm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "C", 16, 16])],
        initializer=[zero],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = tmp_path / "ifm.onnx"
    onnx.save(m, path)
    return path


def test_quantize_with_all_weights_in_if_branches_is_refused(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _if_model(tmp_path)
    data = _calib_data(tmp_path)
    out = tmp_path / "q.onnx"
    import orinbench.precision.qdq as qdq

    monkeypatch.setattr(qdq, "calibrate_ranges", lambda *a, **k: pytest.fail("calibrated first"))
    code, _, err = run_cli("quantize", str(model), "--data", str(data), "--out", str(out))
    line = _one_line(err)
    assert code == 2 and "nothing" in line and "subgraphs" in line and "--allow-empty" in line
    assert not out.exists()
    monkeypatch.undo()
    code, stdout, err = run_cli(
        "quantize", str(model), "--data", str(data), "--out", str(out), "--allow-empty"
    )
    assert code == 0, err
    assert "nothing was quantized" in stdout and "2 Conv" in stdout
    _loads_in_ort(out)


def test_inspect_counts_weights_inside_if_branches(run_cli: Run, tmp_path: Path) -> None:
    from orinbench.model.inspect import inspect_model

    model = _if_model(tmp_path, then_ch=8, else_ch=4)
    info = inspect_model(model)
    # the zero scalar + the larger branch (8x3x3x3); the 4x3x3x3 branch is listed, not summed
    assert info.param_count == 1 + 8 * 27
    assert info.weight_count == 1 + 8 * 27
    by_branch = {b.branch: (b.weight_count, b.counted) for b in info.branches}
    assert by_branch == {"then_branch": (216, True), "else_branch": (108, False)}
    code, out, _ = run_cli("inspect", str(model))
    assert code == 0 and "largest branch" in out and "217" in out


def _dynamic_hw_model(tmp_path: Path) -> Path:
    from conftest import make_conv_model

    m = make_conv_model(dynamic_batch=True)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    path = tmp_path / "dyn.onnx"
    onnx.save(m, path)
    return path


def test_inspect_of_a_dynamic_model_says_flops_unknown(run_cli: Run, tmp_path: Path) -> None:
    model = _dynamic_hw_model(tmp_path)
    code, out, _ = run_cli("inspect", str(model))
    flops = next(ln for ln in out.splitlines() if ln.startswith("FLOPs"))
    assert code == 0 and "unknown (needs --shape" in flops
    assert not any(ch.isdigit() for ch in flops.split("(")[0])  # no number in the headline
    code, out, _ = run_cli("inspect", str(model), "--shape", "x:1x3x16x16", "--json")
    d = json.loads(out)
    assert d["flops_known"] is True and d["flops"]["total"] > 0
    code, out, _ = run_cli("inspect", str(model), "--json")
    assert json.loads(out)["flops_known"] is False


# ------------------------------------------------------------------------------------------
# item 4: input shapes, batch, ONNX Runtime threads and providers are comparability keys


def _run(
    *,
    size: int = 320,
    batch: int = 1,
    threads: int | None = 2,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
    median_ms: float = 20.0,
    seed: int = 0,
    known_runtime: bool = True,
) -> Result:
    from dataclasses import replace

    r = make_result(n=400, backend="onnxruntime", precision="fp32", median_ms=median_ms, seed=seed)
    runtime = {"providers": list(providers), "intra_op_threads": threads} if known_runtime else None
    return r.with_(config=replace(r.config, shapes={"x": (batch, 3, size, size)}, runtime=runtime))


def _gate(
    run_cli: Run, tmp_path: Path, result: Result, baseline: Result, *flags: str
) -> tuple[int, str, str]:
    save_result(result, tmp_path / "r.json")
    save_result(baseline, tmp_path / "b.json")
    return run_cli(
        "gate",
        str(tmp_path / "r.json"),
        "--baseline",
        str(tmp_path / "b.json"),
        "--no-history",
        *flags,
    )


def test_gate_refuses_a_baseline_of_other_input_shapes(run_cli: Run, tmp_path: Path) -> None:
    # 160x160 is faster: before the fix this was "improved" against the 320x320 baseline
    small, big = _run(size=160, median_ms=13.0), _run(size=320, median_ms=20.0, seed=1)
    code, out, err = _gate(run_cli, tmp_path, small, big)
    line = _one_line(err)
    assert code == 3, out + err
    assert "input shapes: result x:1x3x160x160 vs baseline x:1x3x320x320" in line
    # a different workload is not a setup difference: no flag compares it anyway
    code, _, err = _gate(run_cli, tmp_path, small, big, "--allow-env-mismatch")
    assert code == 3 and "input shapes" in err


def test_gate_refuses_another_batch(run_cli: Run, tmp_path: Path) -> None:
    code, _, err = _gate(run_cli, tmp_path, _run(batch=4), _run(batch=1, seed=1))
    assert code == 3 and "x:4x3x320x320 vs baseline x:1x3x320x320" in _one_line(err)


def test_gate_refuses_other_ort_threads_unless_allowed(run_cli: Run, tmp_path: Path) -> None:
    code, _, err = _gate(run_cli, tmp_path, _run(threads=1), _run(threads=4, seed=1))
    line = _one_line(err)
    assert code == 3 and "intra-op threads: result 1 vs baseline 4" in line
    code, out, err = _gate(
        run_cli, tmp_path, _run(threads=1), _run(threads=4, seed=1), "--allow-env-mismatch"
    )
    assert code in (0, 1) and "threads" in out + err
    code, _, err = _gate(
        run_cli,
        tmp_path,
        _run(providers=("CUDAExecutionProvider", "CPUExecutionProvider")),
        _run(seed=1),
    )
    assert code == 3 and "providers" in _one_line(err)


def test_unknown_runtime_is_not_equal_to_a_known_one(run_cli: Run, tmp_path: Path) -> None:
    """A v1 ONNX Runtime baseline (no threads/providers stored) against a v2 result."""
    old = json.loads(json.dumps(_run(seed=1).to_dict()))
    old["schema_version"] = 1
    del old["config"]["runtime"]
    (tmp_path / "b1.json").write_text(json.dumps(old))
    baseline = load_result(tmp_path / "b1.json")
    assert baseline.config.runtime is None
    code, _, err = _gate(run_cli, tmp_path, _run(), baseline)
    assert code == 3 and "unknown" in _one_line(err)
    # two results that both do not know it: nothing tells them apart
    code, _, err = _gate(run_cli, tmp_path, _run(known_runtime=False), baseline)
    assert code in (0, 1), err


def test_bench_records_shapes_threads_and_providers(run_cli: Run, conv_model: Path) -> None:
    code, out, err = run_cli(
        "bench", str(conv_model), "--iterations", "3", "--ort-threads", "1", "--json",
        "--no-history", "--warmup", "0",
    )  # fmt: skip
    assert code == 0, err
    cfg = json.loads(out)["config"]
    assert cfg["shapes"] == {"x": [1, 3, 16, 16]}
    assert cfg["runtime"] == {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1}


def test_baseline_key_holds_the_shapes(run_cli: Run, tmp_path: Path) -> None:
    from orinbench.gate.baseline import baseline_path, find_baseline, record_baseline

    big, small = _run(size=320), _run(size=160, seed=1)
    p_big = record_baseline(big, to_dir=tmp_path, allow_imprecise=True)
    p_small = record_baseline(
        small, to_dir=tmp_path, allow_imprecise=True
    )  # no BaselineExistsError: another key
    assert p_big != p_small and p_big.name == "bevfusion-tiny--1x3x320x320.json"
    assert find_baseline(small, tmp_path) == p_small
    assert baseline_path(_run(size=224), tmp_path).name.endswith("--1x3x224x224.json")


def test_a_baseline_recorded_without_shapes_in_its_key_is_still_checked(
    run_cli: Run, tmp_path: Path
) -> None:
    from orinbench.gate.baseline import baseline_path

    big = _run(size=320)
    legacy = baseline_path(big, tmp_path / "bl").with_name("bevfusion-tiny.json")
    legacy.parent.mkdir(parents=True)
    save_result(big, legacy)  # where an older orinbench kept it
    save_result(_run(size=160, seed=1), tmp_path / "r.json")
    code, out, err = run_cli(
        "gate", str(tmp_path / "r.json"), "--baseline-dir", str(tmp_path / "bl"), "--no-history"
    )
    assert code == 3 and "input shapes" in err and str(legacy) in out


def test_history_trend_keeps_shapes_apart(tmp_path: Path) -> None:
    from orinbench.history.store import HistoryStore
    from orinbench.history.trend import find_step_changes, group_series

    with HistoryStore(tmp_path / "h.db") as store:
        # 320x320 runs at 20 ms, then 160x160 runs at 9 ms: two flat series, no step
        for i in range(6):
            store.append(_run(size=320, seed=i, median_ms=20.0), command="bench")
        for i in range(6):
            store.append(_run(size=160, seed=10 + i, median_ms=9.0), command="bench")
        rows = store.query()
    groups = group_series(rows, "latency.p99_ms")
    assert sorted(k.shapes for k in groups) == ["x:1x3x160x160", "x:1x3x320x320"]
    assert find_step_changes(rows, "latency.p99_ms") == []


# ------------------------------------------------------------------------------------------
# item 13: the FP16 comparison found that an IR < 4 model (initializers listed as graph
# inputs, as onnx-caffe2 and old exporters wrote them) failed our converter's type check


def test_fp16_of_an_ir3_model_with_initializers_as_inputs(tmp_path: Path) -> None:
    from conftest import make_conv_model

    from orinbench.precision.fp16 import convert_to_fp16

    m = make_conv_model(channels=4, size=16)
    m.opset_import[0].version = 9
    m.ir_version = 3
    for init in m.graph.initializer:
        m.graph.input.append(
            helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    onnx.checker.check_model(m)
    src = tmp_path / "ir3.onnx"
    onnx.save(m, src)
    out = convert_to_fp16(src, tmp_path / "ir3.fp16.onnx")
    _loads_in_ort(out)
    conv = onnx.load(out)
    w = next(i for i in conv.graph.input if i.name == "w")
    assert w.type.tensor_type.elem_type == TensorProto.FLOAT16
    x = next(i for i in conv.graph.input if i.name == "x")
    assert x.type.tensor_type.elem_type == TensorProto.FLOAT  # the real input keeps float32


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "{model}", "--out", "{folder}"],
        ["quantize", "{model}", "--data", "{data}", "--out", "{folder}"],
        ["calibrate", "{model}", "--data", "{data}", "--out", "{folder}"],
        ["accuracy", "{model}", "--reference", "{model}", "--data", "{data}", "--out", "{folder}"],
        ["sensitivity", "{model}", "--data", "{data}", "--out", "{folder}"],
        ["soak", "{model}", "--seconds", "5", "--out", "{folder}"],
        ["decide", "{model}", "--out", "{folder}"],
        ["build", "{model}", "--out", "{folder}"],
        ["calib", "generate", "{model}", "--out", "{file}"],
        ["zoo", "export", "sample-bev", "--out", "{file}"],
        ["history", "--plot", "latency.p99_ms", "--out", "{folder}"],
        ["gate", "{result}", "--targets", "{targets}", "--junit", "{folder}"],
        ["report", "{result}", "--html", "{folder}"],
        ["baseline", "record", "{result}", "--to", "{file}"],
    ],
    ids=lambda a: " ".join(a[:2]).replace("{model}", "").strip(),
)
def test_every_command_checks_its_output_before_the_work(
    run_cli: Run, conv_model: Path, tmp_path: Path, argv: list[str]
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    file = tmp_path / "a-file"
    file.write_text("mine")
    result = tmp_path / "r.json"
    save_result(make_result(n=50), result)
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"latency.p99_ms" = "< 1000"\n')
    values = {
        "{model}": str(conv_model),
        "{data}": str(_calib_data(tmp_path)),
        "{folder}": str(folder),
        "{file}": str(file),
        "{result}": str(result),
        "{targets}": str(targets),
    }
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = run_cli(*[values.get(a, a) for a in argv])
    line = _one_line(err)
    # the check before the work names the flag ("cannot write --out X"); the write at the end
    # names only the path
    assert code == 2 and "cannot write --" in line, line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert file.read_text() == "mine"


def test_bench_json_on_stdout_is_strict_json_with_nan(
    run_cli: Run, conv_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orinbench.cli.bench as bench_cli

    nan_result = make_result(n=50)
    nan_result = nan_result.with_(throughput={**nan_result.throughput, "fps": float("nan")})
    monkeypatch.setattr(bench_cli, "bench_model", lambda *a, **k: nan_result)
    code, out, err = run_cli("bench", str(conv_model), "--json", "--no-history", "--power", "none")

    def refuse(token: str) -> None:
        raise AssertionError(f"bare {token} in the JSON output")

    assert code == 0, err
    assert json.loads(out, parse_constant=refuse)["throughput"]["fps"] is None


def test_sample_model_export_checks_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orinbench.zoo.sample_bev as sb
    from orinbench.errors import ModelError

    real = sb.build_sample_bev

    def broken(*a: object, **k: object) -> onnx.ModelProto:
        m = real(*a, **k)
        m.graph.node[0].input[0] = "nothing_makes_this"
        return m

    monkeypatch.setattr(sb, "build_sample_bev", broken)
    with pytest.raises(ModelError, match="nothing was written"):
        sb.export_sample_bev(tmp_path / "s.onnx")
    assert list(tmp_path.iterdir()) == []
