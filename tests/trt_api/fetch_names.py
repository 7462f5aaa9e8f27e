"""Make the TensorRT name lists of tests/test_api_conformance.py from the real bindings wheels.

    python tests/trt_api/fetch_names.py               # download the wheels, write names-*.txt
    python tests/trt_api/fetch_names.py --wheels DIR  # use wheels already downloaded

The bindings-only wheels on PyPI (about 1 MB each) hold the compiled module ``tensorrt.so``; its
string table holds every name bound with pybind11 (classes, methods, properties, enum members)
as a NUL-terminated string. The linker merges a short literal into the tail of a longer one that
ends with it ("size" may only exist as the end of "max_workspace_size"), so besides the strings
that are identifiers, the identifier at the end of every other string is kept too, and the test
accepts a name that is a suffix of a listed one. Python-level names of the package's
``__init__.py`` (``__version__``, ``nptype``, ``volume``) are added from its syntax tree.

Each output file starts with ``#`` lines naming the wheel file and its sha256.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: (label, PyPI package, version): 8.6 is the last 8.x on PyPI (JetPack 6.0 has 8.6.2);
#: 10.3 is JetPack 6.1/6.2's TensorRT; 11.4 is the current release.
WHEELS = (
    ("8.6", "tensorrt-bindings", "8.6.1"),
    ("10.3", "tensorrt-cu12-bindings", "10.3.0"),
    ("11.4", "tensorrt-cu12-bindings", "11.4.0.106"),
)
HERE = Path(__file__).resolve().parent
_IDENT = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]*$")
_TAIL = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)$")


def download(package: str, version: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.10", "--platform", "manylinux_2_17_x86_64",
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
        "-d", str(dest), f"{package}=={version}",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    norm = package.replace("-", "_")
    found = sorted(dest.glob(f"{norm}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"no wheel for {package}=={version} in {dest}")
    return found[0]


def names_of_wheel(wheel: Path) -> set[str]:
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            parts = member.split("/")
            if len(parts) != 2 or not parts[0].startswith("tensorrt"):
                continue
            if member.endswith(".so"):
                for s in zf.read(member).split(b"\0"):
                    if _IDENT.match(s):
                        if not s.startswith(b"_Z"):  # C++ mangled symbols
                            names.add(s.decode())
                    else:
                        m = _TAIL.search(s)
                        if m and not m.group(1).startswith(b"_Z"):
                            names.add(m.group(1).decode())
            elif member.endswith("__init__.py"):
                tree = ast.parse(zf.read(member).decode())
                for node in ast.walk(tree):
                    if isinstance(node, ast.FunctionDef) and node.col_offset == 0:
                        names.add(node.name)
                    elif isinstance(node, ast.Assign):
                        for t in node.targets:
                            if isinstance(t, ast.Name):
                                names.add(t.id)
                            elif isinstance(t, ast.Attribute):
                                names.add(t.attr)
    return names


def write_list(label: str, package: str, version: str, wheel: Path, out_dir: Path) -> Path:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    names = names_of_wheel(wheel)
    out = out_dir / f"names-{label}.txt"
    header = [
        f"# TensorRT {version} Python bindings: PyPI {package}=={version}",
        f"# wheel {wheel.name} sha256 {digest}",
        "# identifier strings of its compiled module (and string tails, see fetch_names.py),",
        "# plus the names its __init__.py defines; made by tests/trt_api/fetch_names.py",
    ]
    out.write_text("\n".join(header + sorted(names)) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, default=None, help="folder with the wheels already")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.wheels or Path(tmp)
        for label, package, version in WHEELS:
            norm = package.replace("-", "_")
            found = sorted(folder.glob(f"{norm}-{version}-*.whl"))
            wheel = found[0] if found else download(package, version, folder)
            out = write_list(label, package, version, wheel, args.out_dir)
            count = sum(1 for ln in out.read_text().splitlines() if not ln.startswith("#"))
            print(f"{out}: {count} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
