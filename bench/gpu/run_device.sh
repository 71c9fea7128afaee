#!/usr/bin/env bash
# Device-side entry point: build liblinr_cuda.so, run correctness + benchmark,
# leave results in $OUT (JSON, log, PNG). Usage on the GPU machine:
#   bash bench/gpu/run_device.sh [--quick] [--budget SECONDS]
set -uo pipefail
OUT="${OUT:-/tmp/linr_gpu_out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
t0=$(date +%s)
bash custom_ops/cuda/build.sh /tmp/linr_cuda 2>&1 | grep -v "Warning: The 'compute_" || exit 1
echo "build: $(( $(date +%s) - t0 )) s"
PYTHONUNBUFFERED=1 python3 bench/gpu/harness.py --lib /tmp/linr_cuda/liblinr_cuda.so --out "$OUT" "$@"
