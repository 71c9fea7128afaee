#!/usr/bin/env bash
# Device-side entry point for the LinrHammingTopK CUDA kernel (issue 4): build
# liblinr_cuda.so, check bit-exactness, time 1B / 100M x 128-bit codes, leave
# gpu_hamming.json + hamming_harness.log in $OUT. On the GPU machine:
#   bash bench/gpu/run_hamming_device.sh [--quick] [--budget SECONDS]
set -uo pipefail
OUT="${OUT:-/tmp/linr_gpu_out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$OUT/device.txt"
nvcc --version | tail -1 | tee -a "$OUT/device.txt"
t0=$(date +%s)
bash custom_ops/cuda/build.sh /tmp/linr_cuda 2>&1 | grep -v "Warning: The 'compute_" || exit 1
echo "build: $(( $(date +%s) - t0 )) s"
PYTHONUNBUFFERED=1 python3 bench/gpu/hamming_harness.py --lib /tmp/linr_cuda/liblinr_cuda.so --out "$OUT" "$@"
