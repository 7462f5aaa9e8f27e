"""Mutation testing of orinbench's decision modules: a small AST mutator.

Each mutant changes one thing in one module of ``orinbench/`` (an operator, a constant, a
``return`` value, or deletes one statement), and the tests that cover that module run against it
(``pytest -x -q``). A mutant that makes a test fail is *killed*; one that lets every test pass
*survives*: a mistake of that shape would reach users unnoticed. Mutants that cannot change
behaviour at all (*equivalent* mutants) are listed, each with the reason, in :data:`EQUIVALENT`;
the score of a module is ``killed / (total - listed equivalents)`` (a mutant that hangs past the
timeout counts as killed).

Usage (from the repository root; not part of ``.ci/run``, it takes minutes per module)::

    python benchmarks/mutate.py --out benchmarks/results/mutation-scores.txt   # all modules
    python benchmarks/mutate.py --module gate/compare.py --jobs 2
    python benchmarks/mutate.py --module stats --list  # the mutants, without running them
    python benchmarks/mutate.py --module stats --keys-from benchmarks/results/mutation-scores.txt
                                                       # re-run only the survivors of a report

The target is 90 % per module. :data:`SCOPE` restricts a module to some of its functions
(telemetry/power.py: its summaries; its power sources are tested against fake devices elsewhere).

Mutants run in a temporary copy of ``orinbench/`` and ``tests/``; the real tree is never
written. To keep a run cheap, a parent process imports the heavy dependencies (numpy, scipy,
onnx, pytest) once and forks one child per mutant, and each mutant runs only the tests that
execute the statement it changes (a first, clean run records which lines of the module each test
executes; a statement run at import time gets every test; one that no test runs survives without
a run). The clean run must pass, or the module is not scored.

Mutation operators (one mutant per site and operator):

* arithmetic ``+ - * / // % **`` swapped (``+``<->``-``, ``*``<->``/``, ``//``->``/``,
  ``%``->``//``, ``**``->``*``), also in ``+=`` etc.;
* comparisons at the boundary (``<``<->``<=``, ``>``<->``>=``) and negated
  (``==``<->``!=``, ``in``<->``not in``, ``is``<->``is not``);
* ``and``<->``or``; ``not x``->``x``; ``-x``->``x``;
* constants: an int ``n``->``n+1``; a float ``c``->``c/2`` (``0.0``->``1.0``), so ``1.0 - alpha``
  becomes ``0.5 - alpha``; ``True``<->``False``;
* ``return x``->``return None``;
* statement deletion (replaced by ``pass``): calls made for their effect, ``+=``, assignments to
  an attribute or a subscript, ``raise``, ``continue``, ``break``, and ``if`` blocks without
  ``else``.

Out of scope (never mutated): docstrings, type annotations, decorators, strings (including
f-string parts: the wording of messages is not what these mutants test), ``assert`` statements
(type narrowing only), and code under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: module (relative to orinbench/) -> the test files that cover it (pytest arguments: a
#: ``--deselect`` leaves out a test that cannot tell mutants apart but costs seconds each run)
MODULES: dict[str, tuple[str, ...]] = {
    # the scipy-less test only checks, in a subprocess, that the module imports without scipy
    "bench/stats.py": (
        "tests/test_stats.py",
        "tests/test_bench_until_ci.py",  # min_tail_samples
        # the sequential gate's intervals (bootstrap_ratio_normal_ci, mean_ratio_ci, the normal
        # quantile and cdf) are pinned there
        "tests/test_gate_sequential.py",
        "--deselect",  # a smoke run of benchmarks/gate_power.py: seconds per mutant, no pins
        "tests/test_gate_sequential.py::test_gate_power_quick_runs_on_orinbench_code",
        "--deselect",
        "tests/test_stats.py::test_stats_and_gate_run_without_scipy",
    ),
    "gate/compare.py": ("tests/test_gate_compare.py",),
    "gate/precision.py": ("tests/test_gate_precision.py",),
    "gate/verdict.py": ("tests/test_gate_verdict.py",),
    "gate/targets.py": ("tests/test_gate_targets.py",),
    "telemetry/power.py": ("tests/test_power_summary.py",),
    "calib/cache.py": ("tests/test_calib_cache.py",),
    "decide/logic.py": ("tests/test_decide_logic.py",),
}

#: module -> the top-level names (functions, classes, ``<module>`` for module-level code) that
#: are mutated; modules not listed are mutated whole. The power sources of telemetry/power.py are
#: tested against fake devices in the telemetry tests; here only its summaries are scored.
SCOPE: dict[str, frozenset[str]] = {
    "telemetry/power.py": frozenset(
        {
            "<module>",
            "PowerTrace",
            "achieved_period",
            "total_from_rails",
            "_series",
            "_integrate",
            "_stats",
            "_mean_over",
            "_r",
            "summarize_power",
            "power_warnings",
        }
    ),
}

#: Equivalent mutants: module -> {mutant key: why no test can kill it}. A key is
#: ``"<function>: <source of the mutated node> :: <mutation>"`` (``--list`` prints them; a key
#: does not contain the line number, so it survives edits elsewhere in the module). Only list a
#: mutant here after convincing yourself that it cannot change any output.
EQUIVALENT: dict[str, dict[str, str]] = {
    "bench/stats.py": {
        "min_tail_samples: (n - 1) * side >= tail - 1e-09 :: >= -> > (#0)": (
            "the sides are equal only when (n - 1) * side lands exactly on tail - 1e-9, which no "
            "quantile's side does for an integer tail"
        ),
        "min_tail_samples: 1e-09 :: 1e-09 -> 5e-10": (
            "the margin only absorbs rounding of about 1e-13; any value from there to side / 2 "
            "gives the same n"
        ),
        # with n = 0 the binomial CDF is [1] and cdf[:0] is empty, and with n = 1 cdf[0] = 1 - q
        # cannot be both <= alpha/2 and >= 1 - alpha/2: None either way, guard or not
        "order_statistic_ci: if n < 1: :: delete statement": "see above",
        "order_statistic_ci: n < 1 :: < -> <= (#0)": "see above",
        "order_statistic_ci: 1 :: 1 -> 2": "see above",
        # the two loops after the logarithmic estimate settle n exactly whatever the estimate
        # (the first lowers it while n - 1 suffices, the second raises it while n does not), and
        # the estimate is never 1 (max(q, 1 - q) >= 0.5 > alpha / 2)
        "min_samples_for_percentile: 1 :: 1 -> 2": "the loops settle n (see above)",
        "min_samples_for_percentile: math.log(half) / math.log(worst) :: / -> *": (
            "the loops settle n (see above)"
        ),
        "min_samples_for_percentile: n > 1 and worst ** (n - 1) <= half :: and -> or": (
            "lowering n to 1 is undone by the second loop"
        ),
        "min_samples_for_percentile: n > 1 :: > -> >= (#0)": "worst ** 0 = 1 > alpha / 2",
        "min_samples_for_percentile: 1 :: 1 -> 2 [2]": "worst ** 1 >= 0.5 > alpha / 2",
        "min_samples_for_percentile: n - 1 :: - -> +": (
            "lowering n too far is undone by the second loop"
        ),
        "min_samples_for_percentile: 1 :: 1 -> 2 [4]": (
            "lowering n by 2 goes below the answer, which the second loop restores"
        ),
        # the mutants of the second loop's body, which guards against an estimate below the
        # answer: no such input was found (q = 0.25, 0.5, 0.75 with alpha / 2 = 2**-k for
        # k <= 60, and the documented levels), so the body never runs; listed, not proven
        "min_samples_for_percentile: n += 1 :: + -> -": "never runs (see above)",
        "min_samples_for_percentile: n += 1 :: delete statement": "never runs (see above)",
        "min_samples_for_percentile: 1 :: 1 -> 2 [5]": "never runs (see above)",
        # both samples hold at least one value, so N >= 2; with N = 2 the tie term changes the
        # variance only for one tied pair, where U = mu and z = 0, p = 1 either way
        "mann_whitney_u: big_n > 1 :: > -> >= (#0)": "N >= 2 always",
        "mann_whitney_u: 1 :: 1 -> 2": "N = 2: z = 0 and p = 1 either way (see above)",
        "mann_whitney_u: 0.0 :: 0.0 -> 1.0": "the else branch needs N <= 1",
        # floor(n * U) <= n - 1 for U < 1: the clip at n - 1 (or n + 1) never binds
        "_bootstrap_percentiles: n - 1 :: - -> + [2]": "U < 1, so the clip never binds",
        "_bootstrap_percentiles: n - 1 :: - -> + [3]": "U < 1, so the clip never binds",
        # k = n only when h = n - 1, that is q = 100 and frac = 0: `k >= n` never decides
        "_bootstrap_percentiles: k >= n :: >= -> > (#0)": "k = n implies frac = 0",
        # computing the upper order statistic when frac = 0 gives lo + 0 * (hi - lo) = lo: the
        # same percentile distribution (it draws more variates, so other seeded numbers)
        "_bootstrap_percentiles: frac == 0.0 or k >= n :: or -> and": (
            "same distribution of the resampled percentiles (see above)"
        ),
        "_bootstrap_percentiles: 0.0 :: 0.0 -> 1.0": (
            "frac < 1 always: same as `or -> and` (see above)"
        ),
        # read only when |rel| > drift_threshold >= 0, so rel != 0 there
        "quality_warnings: rel > 0 :: > -> >= (#0)": "rel is never 0 where it is read",
        # the segmentation loop checks each segment's length itself, and an empty or short
        # series yields no split either way
        "change_points: 2 * min_size :: * -> /": "the loop checks the length itself",
    },
    "gate/compare.py": {
        "direction: 1 :: 1 -> 2": (
            'metric.rsplit(".", 2)[-1] is the same last component as metric.rsplit(".", 1)[-1]'
        ),
        "default_tolerance: if metric.startswith('throughput.'): :: delete statement": (
            "THROUGHPUT_TOLERANCE equals OTHER_TOLERANCE (and LATENCY_TOLERANCE): a throughput "
            "metric falls through to the same 5 %"
        ),
        "_Context.verdict: delta > 0 :: > -> >= (#0)": (
            "read only when the change is beyond a tolerance, which is never negative "
            "(parse_tolerance refuses it), so delta is never 0 there"
        ),
        "default_tolerance: if metric.endswith('_ms'): :: delete statement": (
            "LATENCY_TOLERANCE equals OTHER_TOLERANCE: a latency metric falls through to the "
            "same 5 %"
        ),
    },
    "gate/verdict.py": {
        "GateReport.to_text: True :: True -> False": (
            "zip(strict=...) over a row's cells and the widths: both have len(_HEADER) - 1 items"
        ),
    },
    "calib/cache.py": {
        "encode_version: 3 :: 3 -> 4": (
            "[*parts, 0, 0][:3] keeps the first three numbers whether parts holds three or four"
        ),
    },
    "gate/targets.py": {
        "<module>: sys.version_info >= (3, 11) :: >= -> > (#0)": (
            "sys.version_info has five fields, so it never equals (3, 11): > and >= agree"
        ),
        "_line_of: 1 :: 1 -> 2 [2]": (
            'key.rsplit(".", 2)[-1] is the same last component as key.rsplit(".", 1)[-1]'
        ),
    },
}

_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
_CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position of the mutated node in the traversal of :func:`_sites`
    option: int  # which mutation of that node
    line: int
    func: str
    snippet: str
    desc: str

    @property
    def key(self) -> str:
        return f"{self.func}: {self.snippet} :: {self.desc}"


# -------------------------------------------------------------------------------------------
# finding and applying mutations


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


_SKIP_FIELDS = {"annotation", "returns", "decorator_list", "type_comment"}


Site = tuple[ast.AST, ast.AST | None, str, int | None, str, ast.AST | None]


def _sites(tree: ast.AST) -> Iterator[Site]:
    """``(node, parent, field, index in field, function qualname, innermost statement)`` in a
    fixed order."""

    def walk(
        node: ast.AST,
        parent: ast.AST | None,
        field: str,
        idx: int | None,
        func: str,
        stmt: ast.AST | None = None,
    ) -> Iterator[Site]:
        if isinstance(node, ast.JoinedStr) or _is_type_checking(node):
            return
        if isinstance(node, (ast.Assert, ast.Import, ast.ImportFrom)):
            return
        if _is_docstring(node) if isinstance(node, ast.stmt) else False:
            return
        if isinstance(node, ast.stmt):
            stmt = node
        yield node, parent, field, idx, func, stmt
        inner = func
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = f"{func}.{node.name}" if func else node.name
        for name, value in ast.iter_fields(node):
            if name in _SKIP_FIELDS:
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        yield from walk(item, node, name, i, inner, stmt)
            elif isinstance(value, ast.AST):
                yield from walk(value, node, name, None, inner, stmt)

    yield from walk(tree, None, "", None, "")


def _deletable(node: ast.AST, parent: ast.AST | None) -> bool:
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call)
    if isinstance(node, (ast.AugAssign, ast.Raise, ast.Continue, ast.Break)):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets)
    if isinstance(node, ast.If):
        return not node.orelse and not isinstance(parent, ast.Module)
    return False


def _options(node: ast.AST, parent: ast.AST | None) -> list[str]:
    """Descriptions of the mutations of ``node`` (the order is the option number)."""
    out: list[str] = []
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP_SWAP:
        a, b = type(node.op), _BINOP_SWAP[type(node.op)]
        out.append(f"{_SYMBOL[a]} -> {_SYMBOL[b]}")
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _CMP_SWAP:
                out.append(f"{_SYMBOL[type(op)]} -> {_SYMBOL[_CMP_SWAP[type(op)]]} (#{i})")
    if isinstance(node, ast.BoolOp):
        out.append("and -> or" if isinstance(node.op, ast.And) else "or -> and")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        out.append("drop not" if isinstance(node.op, ast.Not) else "drop unary -")
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            out.append(f"{v} -> {not v}")
        elif isinstance(v, int):
            out.append(f"{v} -> {v + 1}")
        elif isinstance(v, float):
            out.append(f"{v!r} -> {_float_mutant(v)!r}")
    returns_none = isinstance(node, ast.Return) and (
        node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
    )
    if isinstance(node, ast.Return) and not returns_none:
        out.append("return None")
    if isinstance(node, ast.stmt) and _deletable(node, parent):
        out.append("delete statement")
    return out


def _float_mutant(v: float) -> float:
    return 1.0 if v == 0.0 else v / 2.0


def _apply(node: ast.AST, parent: ast.AST | None, field: str, idx: int | None, desc: str) -> None:
    def replace(new: ast.AST) -> None:
        assert parent is not None
        if idx is None:
            setattr(parent, field, new)
        else:
            getattr(parent, field)[idx] = new

    if desc.startswith("delete"):
        replace(ast.copy_location(ast.Pass(), node))
    elif desc == "return None":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(value=None)
    elif desc in ("and -> or", "or -> and"):
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif desc.startswith("drop"):
        assert isinstance(node, ast.UnaryOp)
        replace(node.operand)
    elif isinstance(node, ast.Compare):
        i = int(desc.rsplit("#", 1)[1].rstrip(")"))
        node.ops[i] = _CMP_SWAP[type(node.ops[i])]()
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        node.op = _BINOP_SWAP[type(node.op)]()
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            node.value = not v
        elif isinstance(v, int):
            node.value = v + 1
        else:
            node.value = _float_mutant(v)
    else:  # pragma: no cover - _options and _apply disagree
        raise AssertionError(desc)


def mutants(module: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    for i, (node, parent, _field, _idx, func, _stmt) in enumerate(_sites(tree)):
        for j, desc in enumerate(_options(node, parent)):
            if isinstance(node, ast.stmt) and desc in ("delete statement", "return None"):
                snippet = ast.unparse(node).splitlines()[0]
            else:
                snippet = ast.unparse(node)
            snippet = " ".join(snippet.split())[:70]
            m = Mutant(module, i, j, getattr(node, "lineno", 0), func or "<module>", snippet, desc)
            # the same code can occur twice in a function: number the repeats
            n = seen.get(m.key, 0)
            seen[m.key] = n + 1
            if n:
                m = Mutant(module, i, j, m.line, m.func, m.snippet, f"{desc} [{n + 1}]")
            out.append(m)
    scope = SCOPE.get(module)
    return out if scope is None else [m for m in out if m.func.split(".", 1)[0] in scope]


def mutated_source(source: str, m: Mutant) -> str:
    tree = ast.parse(source)
    for i, (node, parent, field, idx, _func, _stmt) in enumerate(_sites(tree)):
        if i == m.index:
            desc = _options(node, parent)[m.option]
            _apply(node, parent, field, idx, desc)
            return ast.unparse(ast.fix_missing_locations(tree))
    raise AssertionError(f"no node {m.index}")


# -------------------------------------------------------------------------------------------
# running


def _preimport() -> None:
    """Import the heavy dependencies once, before forking (never orinbench itself)."""
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import pytest  # noqa: F401
    import scipy.stats  # noqa: F401


def _make_copy() -> Path:
    root = Path(tempfile.mkdtemp(prefix="orinbench-mutate-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(REPO / "orinbench", root / "orinbench", ignore=ignore)
    shutil.copytree(REPO / "tests", root / "tests", ignore=ignore)
    shutil.copytree(
        REPO / "docs", root / "docs", ignore=ignore
    )  # tests that check the docs' numbers
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


class _LineTracer:
    """A pytest plugin that records which lines of one file each test executes.

    Lines executed outside any test (at import, in collection) are recorded under ``""``.
    """

    def __init__(self, filename: str, out: Path) -> None:
        self.filename = filename
        self.out = out
        self.current = ""
        self.lines: dict[str, set[int]] = {"": set()}

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        return self._local if frame.f_code.co_filename == self.filename else None

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines.setdefault(self.current, set()).add(frame.f_lineno)
        return self._local

    def start(self) -> None:
        sys.settrace(self._global)
        threading.settrace(self._global)

    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> None:
        self.current = item.nodeid

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.current = ""

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        sys.settrace(None)
        data = {k: sorted(v) for k, v in self.lines.items()}
        self.out.write_text(json.dumps(data), encoding="utf-8")


def _spawn(
    root: Path, tests: Sequence[str], log: Path, *, trace: tuple[str, Path] | None = None
) -> int:
    """Fork a child that runs pytest on ``tests`` in the copy at ``root``; returns its pid.

    With ``trace`` (file, output), the child also records the lines of that file each test runs.
    """
    pid = os.fork()
    if pid:
        return pid
    try:  # the child
        os.setpgid(0, 0)  # its own process group, so that a timeout can end everything it started
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(root)
        sys.path.insert(0, str(root))
        import pytest

        plugins: list[Any] = []
        if trace is not None:
            tracer = _LineTracer(trace[0], trace[1])
            tracer.start()
            plugins.append(tracer)
        args = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
        rc = pytest.main(args, plugins=plugins)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(rc))
    except BaseException:  # a child must never return into the parent's code
        os._exit(99)


def _wait(pid: int, timeout: float) -> int | None:
    """The exit status of ``pid``, or None if it ran past ``timeout`` (then it is killed)."""
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout | equivalent-killed | equivalent
    seconds: float


def _selector(
    source: str, lines: dict[str, list[int]], tests: tuple[str, ...]
) -> Callable[[Mutant], list[str]]:
    """Which tests to run against a mutant: those that executed the statement it changes.

    ``lines`` maps test node ids to the lines of the (re-generated) module they executed, ``""``
    to the lines executed outside any test (imports, collection). A mutant of a statement run at
    import (module constants, default arguments) gets every test; one of a statement that no
    test runs gets none (it survives). Tests are selected by function, all parameters included.
    """
    regenerated = ast.parse(ast.unparse(ast.parse(source)))
    original = list(_sites(ast.parse(source)))
    sites = list(_sites(regenerated))
    same = len(original) == len(sites) and all(
        type(a[0]) is type(b[0]) for a, b in zip(original, sites, strict=True)
    )
    at_import = set(lines.get("", []))
    by_test = {t: set(v) for t, v in lines.items() if t}
    if not same or not by_test:  # cannot map the mutants onto the trace: run everything
        return lambda m: list(tests)
    ranges = [_stmt_range(node, stmt) for node, _p, _f, _i, _fn, stmt in sites]

    def select(m: Mutant) -> list[str]:
        lo, hi = ranges[m.index]
        span = set(range(lo, hi + 1))
        if span & at_import:
            return list(tests)
        names = [t.split("[", 1)[0] for t, seen in by_test.items() if seen & span]
        return list(dict.fromkeys(names))

    return select


def _stmt_range(node: ast.AST, stmt: ast.AST | None) -> tuple[int, int]:
    target = stmt if stmt is not None else node
    lo = getattr(target, "lineno", 0)
    return lo, getattr(target, "end_lineno", None) or lo


def run_module(
    module: str,
    *,
    jobs: int,
    max_mutants: int | None,
    keys: set[str] | None,
    timeout: float | None,
    out_lines: list[str],
) -> tuple[list[Outcome], int]:
    src_path = REPO / "orinbench" / module
    source = src_path.read_text(encoding="utf-8")
    tests = MODULES[module]
    all_mutants = mutants(module, source)
    todo = [m for m in all_mutants if keys is None or m.key in keys]
    if max_mutants is not None:
        todo = todo[:max_mutants]
    roots = [_make_copy() for _ in range(jobs)]
    try:
        # the unmutated (but re-generated) module must pass, and gives the time budget
        target0 = roots[0] / "orinbench" / module
        target0.write_text(ast.unparse(ast.parse(source)), encoding="utf-8")
        t0 = time.monotonic()
        trace = (str(target0), roots[0] / "lines.json")
        rc = _wait(_spawn(roots[0], tests, roots[0] / "log.txt", trace=trace), 900)
        base_s = time.monotonic() - t0
        if rc != 0:
            log = (roots[0] / "log.txt").read_text(errors="replace")[-3000:]
            raise SystemExit(f"{module}: the tests fail without any mutant (rc {rc}):\n{log}")
        limit = timeout if timeout is not None else max(15.0, 4.0 * base_s)
        select = _selector(source, json.loads(trace[1].read_text(encoding="utf-8")), tests)
        equivalent = EQUIVALENT.get(module, {})
        outcomes: list[Outcome] = []
        free = list(range(jobs))
        running: dict[int, tuple[int, Mutant, float]] = {}  # pid -> slot, mutant, start
        queue = list(todo)
        while queue or running:
            while queue and free:
                m = queue.pop(0)
                chosen = select(m)
                if not chosen:
                    # no test runs this code: the mutant survives without a run
                    st = "equivalent" if m.key in EQUIVALENT.get(module, {}) else "survived"
                    outcomes.append(Outcome(m, st, 0.0))
                    print(f"  {len(outcomes)}/{len(todo)} {st:9s} L{m.line} {m.key} (no test "
                          "runs it)", flush=True)  # fmt: skip
                    continue
                slot = free.pop()
                root = roots[slot]
                (root / "orinbench" / module).write_text(
                    mutated_source(source, m), encoding="utf-8"
                )
                pid = _spawn(root, chosen, root / "log.txt")
                running[pid] = (slot, m, time.monotonic())
            # wait for any child (polling keeps per-child timeouts simple)
            time.sleep(0.02)
            for pid, (slot, m, start) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                elapsed = time.monotonic() - start
                if not done and elapsed <= limit:
                    continue
                if not done:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    st = "timeout"
                else:
                    code = os.waitstatus_to_exitcode(status)
                    # pytest: 0 all passed, 5 nothing collected; anything else failed
                    st = "survived" if code in (0, 5) else "killed"
                if m.key in equivalent:
                    st = "equivalent" if st == "survived" else "equivalent-killed"
                outcomes.append(Outcome(m, st, elapsed))
                del running[pid]
                free.append(slot)
                print(f"  {len(outcomes)}/{len(todo)} {st:9s} L{m.line} {m.key}", flush=True)
        stale = sorted(set(equivalent) - {m.key for m in all_mutants})
        for k in stale:
            out_lines.append(f"  WARNING: listed equivalent mutant no longer exists: {k}")
        return outcomes, len(all_mutants)
    finally:
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)


def summarize(module: str, outcomes: list[Outcome], n_all: int) -> tuple[str, list[str]]:
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    timeout = sum(o.status == "timeout" for o in outcomes)
    survived = [o for o in outcomes if o.status == "survived"]
    equiv = sum(o.status == "equivalent" for o in outcomes)
    equiv_killed = sum(o.status == "equivalent-killed" for o in outcomes)
    denom = len(outcomes) - equiv - equiv_killed
    score = killed / denom if denom else 1.0
    head = (
        f"{module:20s} mutants {len(outcomes):4d} (of {n_all}) killed {killed:4d} "
        f"(timeout {timeout}) survived {len(survived):3d} equivalent {equiv + equiv_killed:3d}"
        f"  score {score:6.1%}"
    )
    lines = [f"  SURVIVED L{o.mutant.line}: {o.mutant.key}" for o in survived]
    if equiv_killed:
        lines += [
            f"  NOTE: listed equivalent but killed (remove from EQUIVALENT) L{o.mutant.line}: "
            f"{o.mutant.key}"
            for o in outcomes
            if o.status == "equivalent-killed"
        ]
    return head, lines


def _resolve(name: str) -> str:
    hits = [m for m in MODULES if m == name or m.endswith(f"/{name}") or m == f"{name}.py"]
    hits = hits or [m for m in MODULES if Path(m).stem == name]
    if len(hits) != 1:
        raise SystemExit(f"unknown module {name!r}; one of: {', '.join(MODULES)}")
    return hits[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--module", action="append", help="module (e.g. gate/compare.py or compare)")
    p.add_argument("--max-mutants", type=int, help="run only the first N mutants of each module")
    p.add_argument("--jobs", type=int, default=1, help="mutants run at the same time (default 1)")
    p.add_argument("--timeout", type=float, help="seconds per mutant (default 4x the clean run)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument(
        "--keys-from", type=Path, help="run only the mutants reported as SURVIVED in this file"
    )
    p.add_argument("--out", type=Path, help="also write the report to this file")
    a = p.parse_args(argv)
    modules = [_resolve(m) for m in a.module] if a.module else list(MODULES)

    if a.list:
        for mod in modules:
            ms = mutants(mod, (REPO / "orinbench" / mod).read_text(encoding="utf-8"))
            print(f"{mod}: {len(ms)} mutants")
            for m in ms:
                print(f"  L{m.line} {m.key}")
        return 0

    keys = None
    if a.keys_from is not None:
        keys = {
            line.split(": ", 1)[1]
            for line in a.keys_from.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith("SURVIVED L")
        }
    # single-threaded BLAS: the children are forked and run side by side
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    # a plain `kill` still removes the temporary copies (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.dont_write_bytecode = True
    _preimport()
    if "orinbench" in sys.modules:  # pragma: no cover - the children must import the mutant
        raise SystemExit("orinbench was imported before forking")

    report = [f"command: python benchmarks/mutate.py {' '.join(argv or sys.argv[1:])}".rstrip()]
    report.append(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    tail: list[str] = []
    for mod in modules:
        print(f"{mod}: tests {' '.join(MODULES[mod])}", flush=True)
        t0 = time.monotonic()
        extra: list[str] = []
        outcomes, n_all = run_module(
            mod,
            jobs=a.jobs,
            max_mutants=a.max_mutants,
            keys=keys,
            timeout=a.timeout,
            out_lines=extra,
        )
        head, lines = summarize(mod, outcomes, n_all)
        report.append(f"{head}  ({time.monotonic() - t0:.0f} s)")
        tail += [f"{mod}:", *lines, *extra] if lines or extra else []
    text = "\n".join(report + tail) + "\n"
    print(text)
    if a.out is not None:
        a.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
