from pathlib import Path
import json
import pytest
from trt_double import pytest_fixtures as fx
import _trt_double_ext
from orinbench.zoo.sample_bev import export_sample_bev
from orinbench.decide import decide_model, format_table
from orinbench.bench.harness import StopRule, Warmup
trt_env = fx.trt_env

@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_x(trt_env, tmp_path, monkeypatch):
    _trt_double_ext.install(monkeypatch)
    m = export_sample_bev(tmp_path / "bev.onnx")
    out = decide_model(m, backend="tensorrt", calib_data=Path("calib/sample_bev_tiny"), dla=True,
                       workdir=tmp_path/"wd", warmup=Warmup(seconds=0.0), stop=StopRule(iterations=20), on_step=print)
    print(format_table(out.decision))
    print((tmp_path/"wd").glob("*"))
    print(sorted(p.name for p in (tmp_path/"wd").iterdir()))
    print(open(tmp_path/"wd"/"bev.dla-fp16.engine.log").read()[-3000:])
