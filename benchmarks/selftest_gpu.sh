#!/usr/bin/env bash
# orinbench selftest on an NVIDIA GPU machine (x86, not a Jetson, no TensorRT): the pycuda layer
# and NVML run for real, ONNX Runtime where installed; TensorRT and Jetson rows are skipped with
# their reasons.
#
#   benchmarks/selftest_gpu.sh [OUT_DIR]
#
# OUT_DIR (default: $OUT/selftest-gpu, else ./selftest-gpu) receives selftest.json,
# selftest.html, work/ and selftest-gpu.txt (everything the script printed).
#
# Environment:
#   PYTHON        the interpreter (default python3), e.g. /opt/torch/.venv/bin/python3
#   PYCUDA_SDIST  a pycuda source archive to build when pycuda does not import (needs nvcc and
#                 the CUDA headers: /usr/local/cuda/bin is put on PATH)
#   WHEELS        a folder of wheels (pytools, platformdirs, typing_extensions, nvidia-ml-py,
#                 onnx, onnxruntime ...) that pip may install from; nothing is downloaded
#
# Packages built or installed here go to OUT_DIR/.deps (pip --target), never into the
# interpreter's own site-packages. Exit status: the self-test's (0: nothing that ran failed,
# 1: a row failed), 2 when the setup itself fails.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-${OUT:+$OUT/}selftest-gpu}
PY=${PYTHON:-python3}
DEPS="$DEST/.deps"
mkdir -p "$DEST" "$DEPS" || exit 2
LOG="$DEST/selftest-gpu.txt"
: >"$LOG"

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
run() { say "\$ $*"; "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

export PYTHONPATH="$REPO:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
export PATH="/usr/local/cuda/bin:$PATH"
PIP=("$PY" -m pip install --no-index --disable-pip-version-check --target "$DEPS")
[ -n "${WHEELS:-}" ] && PIP+=(--find-links "$WHEELS")

has() { "$PY" -c "import $1" >/dev/null 2>&1; }

say "# orinbench selftest on a GPU machine, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "# repository $REPO at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
run "$PY" --version
command -v nvidia-smi >/dev/null && run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
command -v nvcc >/dev/null && run nvcc --version

if ! has pynvml && [ -n "${WHEELS:-}" ]; then
  run "${PIP[@]}" nvidia-ml-py || say "# nvidia-ml-py could not be installed: the NVML rows will be skipped"
fi
if ! has onnx && [ -n "${WHEELS:-}" ]; then
  run "${PIP[@]}" onnx || say "# onnx could not be installed: orinbench needs it (core dependency)"
fi
if ! has onnxruntime && [ -n "${WHEELS:-}" ]; then
  run "${PIP[@]}" onnxruntime || say "# onnxruntime could not be installed: ort.bench will be skipped"
fi
if ! has pycuda; then
  if [ -n "${PYCUDA_SDIST:-}" ]; then
    # --no-build-isolation: build against the numpy already here (no index to fetch one from)
    run "${PIP[@]}" --no-build-isolation "$PYCUDA_SDIST" \
      || say "# pycuda did not build: cuda.pycuda will be skipped"
  else
    say "# pycuda does not import and PYCUDA_SDIST is not set: cuda.pycuda will be skipped"
  fi
fi
run "$PY" -c "import numpy, onnx; print('numpy', numpy.__version__, 'onnx', onnx.__version__)" || exit 2

run "$PY" -m orinbench selftest --out "$DEST" --quiet
status=$?
say "# selftest exit status: $status"
exit "$status"
