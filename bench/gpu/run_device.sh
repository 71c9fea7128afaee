#!/usr/bin/env bash
# Device-side entry point: build liblinr_cuda.so, run correctness + benchmark,
# leave results in $OUT (JSON, log, PNG). Usage on the GPU machine:
#   bash bench/gpu/run_device.sh [--quick] [--correctness-only] [--budget SECONDS]
#       [--compare-lib OTHER.so]
# LINR_CUDA_LIB=path reuses a built library (device_build.sh).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/device_build.sh"
PYTHONUNBUFFERED=1 python3 bench/gpu/harness.py --lib "$LIB" --out "$OUT" "$@"
