#!/usr/bin/env bash
# Build check of the CUDA kernels in torch_utils/ops, for machines without a GPU: compiles every extension
# with nvcc for a few GPU architectures, imports it, and prints one line per op; exit status 1 if any
# failed. Not part of the pytest run (it takes minutes and needs a CUDA build of torch).
#
# Usage: tools/check_cuda_build.sh [PYTHON] [--verbose]
#   PYTHON     interpreter with a CUDA build of torch and ninja (default: python), e.g. a venv outside the repo:
#                python -m venv /tmp/cudavenv && /tmp/cudavenv/bin/pip install torch==2.14.1 ninja numpy
#                tools/check_cuda_build.sh /tmp/cudavenv/bin/python
#   --verbose  show the compiler's output.
# Environment: TORCH_CUDA_ARCH_LIST (default "8.0;9.0": A100, H100), MAX_JOBS (default 1: each nvcc job is
# CPU- and memory-heavy), CUDA_HOME (default /usr/local/cuda if it has nvcc, else the toolkit of the nvcc on PATH).

set -euo pipefail

PYTHON="${1:-python}"
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."

export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}"
export MAX_JOBS="${MAX_JOBS:-1}"
if [ -z "${CUDA_HOME:-}" ]; then
    # torch would take the parent of the nvcc on PATH, which is wrong when that nvcc is a wrapper script.
    if [ -x /usr/local/cuda/bin/nvcc ]; then
        CUDA_HOME=/usr/local/cuda
    elif command -v nvcc >/dev/null; then
        CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
    fi
fi
if [ -n "${CUDA_HOME:-}" ]; then
    export CUDA_HOME
fi

# ninja comes with the interpreter's environment (pip install ninja), which need not be activated.
PYTHON_BIN="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")"
export PATH="$PYTHON_BIN:$PATH"

exec "$PYTHON" tools/check_cuda_build.py "$@"
