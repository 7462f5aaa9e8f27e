"""Every TensorRT name orinbench uses exists in the real TensorRT Python bindings (8.6, 10.3, 11.4).

The name lists in ``tests/trt_api/names-*.txt`` were extracted from the bindings wheels on PyPI
by ``tests/trt_api/fetch_names.py`` (file names and sha256 in their headers). The check is by
name, not by owner class; which class has a name in which version is the double's business, and
the double's own names are checked against the same lists here, so the two checks together tie
orinbench's use of TensorRT to the real bindings.

How the names orinbench uses are found: in ``orinbench/backends/tensorrt`` and the calibrator, a
TensorRT object is only ever held by a variable (or ``self`` attribute, with or without a leading
underscore) of one of the names in :data:`TRT_VARIABLES`, and nothing else is held by those
names; every attribute taken from such a variable, and every method a subclass of a ``trt.``
interface defines, is collected. A guard below fails if the scan stops finding the core calls.

With ``ORINBENCH_CHECK_TRT_WHEELS=1`` (CI, where PyPI is reachable) the wheels are downloaded
again and must give the committed lists.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from orinbench.backends.tensorrt.compat import GATED_NAMES

REPO = Path(__file__).resolve().parents[1]
API_DIR = REPO / "tests" / "trt_api"
DOUBLE_DIR = REPO / "tests" / "trt_double"
SCANNED = [
    *sorted((REPO / "orinbench" / "backends" / "tensorrt").glob("*.py")),
    REPO / "orinbench" / "calib" / "trt_calibrator.py",
]
#: pycuda, not TensorRT
NOT_TRT = {REPO / "orinbench" / "backends" / "tensorrt" / "cuda.py"}
VERSIONS = ("8.6", "10.3", "11.4")

#: the variable names that hold TensorRT objects (and nothing else) in the scanned modules
TRT_VARIABLES = frozenset(
    {"trt", "builder", "network", "parser", "config", "runtime", "engine", "built", "context",
     "inspector", "trt_profile", "serialized", "timing", "error", "base"}
)  # fmt: skip
#: methods orinbench's subclasses of TensorRT interfaces add for themselves (not overrides)
OWN_METHODS = frozenset({"close"})
#: the name lists' 'binding index' API that orinbench must not use (removed in 10.0)
BINDING_API = frozenset(
    {"num_bindings", "get_binding_index", "get_binding_shape", "get_binding_dtype",
     "binding_is_input", "set_binding_shape", "execute_async_v2", "execute_v2", "execute_async",
     "build_engine", "max_workspace_size", "build_cuda_engine", "max_batch_size"}
)  # fmt: skip


@cache
def real_names(version: str) -> frozenset[str]:
    path = API_DIR / f"names-{version}.txt"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# TensorRT") and "sha256" in lines[1], f"{path} lacks its header"
    return frozenset(ln for ln in lines if ln and not ln.startswith("#"))


def exists(name: str, version: str) -> bool:
    names = real_names(version)
    # a short literal may only exist as the tail of a longer one (linker string merging)
    return name in names or any(n.endswith(name) for n in names)


def _root(node: ast.expr) -> str | None:
    """The TensorRT variable an attribute chain starts from, if any."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "lane", "runner"):
                attr = node.attr.lstrip("_")
                return attr if attr in TRT_VARIABLES else None
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            node = node.value
    if isinstance(node, ast.Name) and node.id in TRT_VARIABLES:
        return node.id
    return None


def used_names() -> dict[str, set[str]]:
    """TensorRT name -> files that use it."""
    found: dict[str, set[str]] = {}
    for path in SCANNED:
        if path in NOT_TRT or not path.exists():
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                root = (
                    _root(node.value)
                    if not (
                        isinstance(node.value, ast.Name)
                        and node.value.id in ("self", "lane", "runner")
                    )
                    else None
                )
                if root is None:
                    continue
                found.setdefault(node.attr, set()).add(path.name)
            elif isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Attribute) and _root(b) == "trt")
                or (isinstance(b, ast.Name) and b.id == "base")
                for b in node.bases
            ):
                for item in node.body:
                    if (
                        isinstance(item, ast.FunctionDef)
                        and not item.name.startswith("_")
                        and item.name not in OWN_METHODS
                    ):
                        found.setdefault(item.name, set()).add(path.name)
    return found


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def used_in(name: str, version: str) -> bool:
    since, until = GATED_NAMES.get(name, (None, None))
    v = _version_tuple(version)
    if since is not None and v < _version_tuple(since):
        return False
    return not (until is not None and v >= _version_tuple(until))


def test_name_lists_come_from_the_wheels() -> None:
    for version in VERSIONS:
        header = (API_DIR / f"names-{version}.txt").read_text().splitlines()[:2]
        assert f"TensorRT {version}" in header[0] and ".whl sha256 " in header[1]
        assert len(real_names(version)) > 2000


def test_scan_finds_the_core_calls() -> None:
    names = used_names()
    for core in ("execute_async_v3", "set_input_shape", "set_tensor_address", "num_io_tensors",
                 "get_tensor_name", "build_serialized_network", "deserialize_cuda_engine",
                 "create_execution_context", "report_layer_time", "phase_start",
                 "get_tensor_profile_shape", "parse_from_file", "set_memory_pool_limit",
                 "create_engine_inspector", "ILogger", "BuilderFlag", "get_batch"):  # fmt: skip
        assert core in names, f"the scan no longer sees {core!r}: check TRT_VARIABLES"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_name_orinbench_uses_exists_in_the_real_bindings(version: str) -> None:
    missing = {
        name: sorted(files)
        for name, files in used_names().items()
        if used_in(name, version) and not exists(name, version)
    }
    assert not missing, f"not in TensorRT {version}'s bindings: {missing}"


def test_gated_names_are_gated_for_a_reason() -> None:
    """A name declared version-gated is really missing outside its range (where a list shows it)."""
    for name, (since, until) in GATED_NAMES.items():
        for version in VERSIONS:
            if used_in(name, version):
                assert exists(name, version), (name, version)
        outside = [v for v in VERSIONS if not used_in(name, v)]
        # (EXPLICIT_BATCH still exists in 10.x as a deprecated no-op; 11.x removed it.) A gate
        # that only excludes 8.5, which has no wheel (builder_optimization_level came in 8.6),
        # rests on the 8.5 sources and the double instead.
        assert not outside or any(not exists(name, v) for v in outside), (name, since, until)


def test_no_binding_index_api() -> None:
    offenders = []
    for path in sorted((REPO / "orinbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in BINDING_API:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.attr}")
    assert not offenders


def _double_names(version: str) -> dict[str, set[str]]:
    """Every public name the double defines for ``version``: module names and class members."""
    code = (
        "import enum, inspect, json, tensorrt as t\n"
        "out = {}\n"
        "for n in t.NAMES:\n"
        "    obj = getattr(t, n)\n"
        "    out.setdefault(n, []).append('<module>')\n"
        "    if inspect.isclass(obj):\n"
        "        own = [k for k in obj.__mro__ if k.__module__.startswith('tensorrt')]\n"
        "        members = list(obj.__members__) if issubclass(obj, enum.Enum) else [\n"
        "            m for k in own for m in vars(k)]\n"
        "        for m in members:\n"
        "            if not m.startswith('_'):\n"
        "                out.setdefault(m, []).append(n)\n"
        "for m in t.ILogger.Severity.__members__:\n"
        "    out.setdefault(m, []).append('ILogger.Severity')\n"
        "out.setdefault('Severity', []).append('ILogger')\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "ORINBENCH_TRT_DOUBLE": version, "PYTHONPATH": str(DOUBLE_DIR)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    import json

    return {k: set(v) for k, v in json.loads(proc.stdout).items()}


#: names the double defines only to be TensorRT-like that are Python-level in the real package
#: (ITensor etc. are real class names; Dims is the real trt.Dims)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_double_defines_only_real_names(version: str) -> None:
    fake = {n: owners for n, owners in _double_names(version).items() if not exists(n, version)}
    assert not fake, f"the double ({version}) defines names TensorRT {version} lacks: {fake}"


@pytest.mark.parametrize("version", ["10.3", "11.4"])
def test_names_the_double_drops_are_gone_from_the_real_bindings(version: str) -> None:
    earlier = set(_double_names("8.6"))
    here = set(_double_names(version))
    # dropped by the double for this version; some names live on in other classes in reality
    # (e.g. DEFAULT of other enums), which a name-level check cannot tell apart
    dropped = earlier - here
    still_named = {"DEFAULT", "VERBOSE", "INT8", "supports_model"}
    wrong = sorted(n for n in dropped - still_named if exists(n, version))
    assert not wrong, f"the double drops {wrong} for {version}, but the real bindings have them"
    assert dropped & {"build_engine", "max_workspace_size", "num_bindings"} == (
        {"build_engine", "max_workspace_size", "num_bindings"}
    )


@pytest.mark.skipif(
    os.environ.get("ORINBENCH_CHECK_TRT_WHEELS") != "1",
    reason="set ORINBENCH_CHECK_TRT_WHEELS=1 to download the wheels from PyPI and compare",
)
def test_committed_lists_match_freshly_downloaded_wheels(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(API_DIR / "fetch_names.py"), "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for version in VERSIONS:
        fresh = (tmp_path / f"names-{version}.txt").read_text().splitlines()
        committed = (API_DIR / f"names-{version}.txt").read_text().splitlines()
        assert fresh == committed, version
