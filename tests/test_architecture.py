"""Architecture rules that keep orinbench importable everywhere and its core free of the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "orinbench"
OPTIONAL = ("tensorrt", "pycuda", "jtop", "onnxruntime", "pynvml", "matplotlib")

_BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, sys
    BLOCKED = {OPTIONAL!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for the test: {{name}}")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _modules() -> list[str]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def test_every_module_imports_without_optional_runtimes() -> None:
    mods = _modules()
    proc = _run_blocked(
        f"""
        import importlib
        for m in {mods!r}:
            importlib.import_module(m)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok", len({mods!r}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_cli_help_and_a_cpu_command_work_without_optional_runtimes() -> None:
    proc = _run_blocked(
        """
        from orinbench.cli.main import main
        try:
            main(["--help"])
        except SystemExit as e:
            assert e.code == 0
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bench" in proc.stdout


def test_bench_without_onnxruntime_says_how_to_install_it(conv_model: Path) -> None:
    proc = _run_blocked(
        f"""
        from orinbench.cli.main import main
        sys.exit(main(["bench", {str(conv_model)!r}, "--iterations", "5", "--power", "none",
                       "--no-history"]))
        """
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "orinbench[ort]" in lines[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    pkg = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
    return found


def test_core_never_imports_the_cli() -> None:
    offenders = []
    for p in PKG.rglob("*.py"):
        if "cli" in p.relative_to(PKG).parts or p.name == "__main__.py":
            continue
        if any(m == "orinbench.cli" or m.startswith("orinbench.cli.") for m in _imports(p)):
            offenders.append(str(p))
    assert not offenders


def test_optional_runtimes_are_imported_only_in_lazy() -> None:
    offenders = []
    for p in PKG.rglob("*.py"):
        if p.name == "_lazy.py":
            continue
        for m in _imports(p):
            if m.split(".")[0] in OPTIONAL:
                offenders.append(f"{p.relative_to(PKG)}: {m}")
    assert not offenders


def test_no_print_or_exit_below_the_cli() -> None:
    offenders = []
    for p in PKG.rglob("*.py"):
        if "cli" in p.relative_to(PKG).parts or p.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = (
                    f.id
                    if isinstance(f, ast.Name)
                    else (
                        f"{getattr(f.value, 'id', '')}.{f.attr}"
                        if isinstance(f, ast.Attribute)
                        else ""
                    )
                )
                if name in ("print", "sys.exit", "exit", "quit", "os._exit"):
                    offenders.append(f"{p.relative_to(PKG)}:{node.lineno} {name}")
    assert not offenders


def _telemetry_import_graph() -> dict[str, set[str]]:
    return _import_graph(PKG / "telemetry")


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules under ``root`` it imports, anywhere in its body (a lazy import
    inside a function closes a cycle just as well: it only runs later)."""
    mods: dict[str, Path] = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for stmt in block.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:  # never runs: no cycle at import time
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join([*base, node.module] if node.module else base)
                else:
                    mod = node.module or ""
                found.add(mod)
                # `from . import power` imports the submodule itself
                found.update(f"{mod}.{a.name}" for a in node.names)
        # a module's own packages are always imported before it: not an edge of a cycle
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {m for m in found if m in mods and m != name and m not in ancestors}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_cycle_finder_finds_a_lazy_import_cycle() -> None:
    # the checker itself must see a cycle closed by a function-level import
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_telemetry() -> None:
    graph = _telemetry_import_graph()
    # the graph is real: the sources and the selection import the shared lower layer
    assert "orinbench.telemetry.powertrace" in graph["orinbench.telemetry.sources.sysfs"]
    assert "orinbench.telemetry.sources.sysfs" in graph["orinbench.telemetry.select"]
    assert _cycles(graph) == []


def test_no_import_cycle_anywhere_in_the_package() -> None:
    # report/ draws history/'s trend, never the other way round (they used to import each other)
    graph = _import_graph(PKG)
    assert "orinbench.history.trend" in graph["orinbench.report.trend"]
    assert not any(m.startswith("orinbench.report") for m in graph["orinbench.history.trend"])
    assert _cycles(graph) == []
