# Sourced by run_device.sh / run_hamming_device.sh on the GPU machine: sets
# OUT (default /tmp/linr_gpu_out), writes the device's description to
# $OUT/device.txt and sets LIB to a liblinr_cuda.so: $LINR_CUDA_LIB when set
# (a library built earlier in the same session, e.g. by the other script),
# else one built now by custom_ops/cuda/build.sh into /tmp/linr_cuda.
OUT="${OUT:-/tmp/linr_gpu_out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$OUT/device.txt"
nvcc --version | tail -1 | tee -a "$OUT/device.txt"
if [[ -n "${LINR_CUDA_LIB:-}" ]]; then
  LIB="$LINR_CUDA_LIB"
  [[ -f "$LIB" ]] || { echo "LINR_CUDA_LIB=$LIB: no such file" >&2; exit 1; }
  echo "using $LIB"
else
  t0=$(date +%s)
  bash custom_ops/cuda/build.sh /tmp/linr_cuda 2>&1 | grep -v "Warning: The 'compute_" || exit 1
  echo "build: $(( $(date +%s) - t0 )) s"
  LIB=/tmp/linr_cuda/liblinr_cuda.so
fi
