#!/usr/bin/env bash
# Builds the standalone CUDA library (no TensorFlow): liblinr_cuda.so.
#   bash custom_ops/cuda/build.sh [OUT_DIR]   (default: custom_ops/cuda/build)
# nvcc from PATH, else /usr/local/cuda*/bin. NVCC_ARCH overrides sm_90.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$repo/custom_ops/cuda/build}"
nvcc_bin="$(command -v nvcc || true)"
if [[ -z "$nvcc_bin" ]]; then
  for c in /usr/local/cuda*/bin/nvcc; do [[ -x "$c" ]] && nvcc_bin="$c" && break; done
fi
if [[ -z "$nvcc_bin" ]]; then
  echo "build.sh: nvcc not found (PATH or /usr/local/cuda*/bin); cannot build liblinr_cuda.so" >&2
  exit 1
fi
mkdir -p "$out"
"$nvcc_bin" -O3 -std=c++17 -arch="${NVCC_ARCH:-sm_90}" -shared -Xcompiler -fPIC \
  -I"$repo" "$repo/custom_ops/cuda/linr_cuda_capi.cu" -o "$out/liblinr_cuda.so" ${NVCC_EXTRA:-}
echo "built $out/liblinr_cuda.so"
