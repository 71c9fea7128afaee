#!/usr/bin/env bash
# Device-side entry point for LinrHammingTopK's counting path for very large k
# (issue 13, LiNR's coarse stage): build liblinr_cuda.so, check bit-exactness,
# time 1B x 64-bit codes, top-50M, leave hamming_large_k.json +
# hamming_large_k.log in $OUT. On the GPU machine:
#   bash bench/gpu/run_hamming_large_k_device.sh [--quick] [--correctness-only]
#       [--merge-into bench/results/gpu_hamming.json]
# LINR_CUDA_LIB=path reuses a built library (device_build.sh).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/device_build.sh"
PYTHONUNBUFFERED=1 python3 bench/gpu/hamming_large_k.py --lib "$LIB" --out "$OUT" "$@"
