#!/usr/bin/env bash
# Device-side entry point for the LinrHammingTopK CUDA kernel (issue 4): build
# liblinr_cuda.so, check bit-exactness, time 1B / 100M x 128-bit codes, leave
# gpu_hamming.json + hamming_harness.log in $OUT. On the GPU machine:
#   bash bench/gpu/run_hamming_device.sh [--quick] [--correctness-only] [--budget SECONDS]
# LINR_CUDA_LIB=path reuses a built library (device_build.sh).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/device_build.sh"
PYTHONUNBUFFERED=1 python3 bench/gpu/hamming_harness.py --lib "$LIB" --out "$OUT" "$@"
