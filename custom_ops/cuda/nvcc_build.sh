#!/usr/bin/env bash
# Called by the //custom_ops/cuda:cuda_objects genrule (runs unsandboxed).
#   nvcc_build.sh TF_HEADER OUT_DIR
# TF_HEADER: path of include/tensorflow/core/framework/op_kernel.h of the pip
# TensorFlow (its include dir is derived from it). Writes into OUT_DIR, per op
# (filter_mask, topk, hamming, asym, rows): <op>_kernels_gpu.o (the GPUDevice functors,
# nvcc) and <op>_kernels_cuda.o (<op>_kernels.cc with GOOGLE_CUDA=1: the
# OpKernel<Device> template and its CPU and GPU registrations; host compiler
# through nvcc), then linr_cuda_capi.o. Checks that each <op>_kernels_cuda.o
# finds every GPU functor it uses defined in <op>_kernels_gpu.o. Fails loudly
# without nvcc.
set -euo pipefail
tf_header="$1"; out="$PWD/$2"
nvcc_bin="$(command -v nvcc || true)"
if [[ -z "$nvcc_bin" ]]; then
  for c in /usr/local/bin/nvcc /usr/local/cuda*/bin/nvcc /usr/bin/nvcc; do
    [[ -x "$c" ]] && nvcc_bin="$c" && break
  done
fi
if [[ -z "$nvcc_bin" ]]; then
  echo "ERROR: nvcc not found (PATH, /usr/local/cuda*/bin): cannot compile the LiNR CUDA sources" >&2
  exit 1
fi
tf_inc="$(cd "$(dirname "$(readlink -f "$tf_header")")/../../.." && pwd)"
repo="$(pwd)"
common=(-std=c++17 -O3 -arch=sm_90 -Xcompiler -fPIC -I"$repo")
tf_defs=(-DGOOGLE_CUDA=1 -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64 -I"$tf_inc" -w)
tf_flags=(-x cu "${tf_defs[@]}" --expt-relaxed-constexpr)
# Host side: only checked to compile, so no optimisation.
host_flags=(-std=c++17 -O0 -x c++ -Xcompiler -fPIC -I"$repo" "${tf_defs[@]}")
declare -A dir=([filter_mask]=filter [topk]=topk [hamming]=quantization [asym]=quantization [rows]=rows [mol]=mol)
ops=(filter_mask topk hamming asym rows mol)
log="$(mktemp -d)"
rc=0
# One compile per op at a time (GPU functors, then host kernels).
for kind in gpu cuda; do
  pids=()
  for op in "${ops[@]}"; do
    if [[ $kind == gpu ]]; then
      "$nvcc_bin" "${common[@]}" "${tf_flags[@]}" -c "custom_ops/${dir[$op]}/${op}_kernels_gpu.cu.cc" \
        -o "$out/${op}_kernels_gpu.o" >"$log/$op.$kind" 2>&1 & pids+=($!)
    else
      "$nvcc_bin" "${host_flags[@]}" -c "custom_ops/${dir[$op]}/${op}_kernels.cc" \
        -o "$out/${op}_kernels_cuda.o" >"$log/$op.$kind" 2>&1 & pids+=($!)
    fi
  done
  for i in "${!ops[@]}"; do
    wait "${pids[$i]}" || { echo "compile failed: ${ops[$i]} ($kind)"; cat "$log/${ops[$i]}.$kind"; rc=1; }
  done
done
[[ $rc == 0 ]] || exit 1
# Every linr GPUDevice functor referenced by the host kernels is defined.
for op in "${ops[@]}"; do
  need="$(nm --undefined-only "$out/${op}_kernels_cuda.o" | awk '{print $2}' | grep '4linr' | grep 'GpuDevice' || true)"
  have="$(nm --defined-only "$out/${op}_kernels_gpu.o" | awk '{print $3}')"
  [[ -n "$need" ]] || { echo "${op}_kernels_cuda.o uses no GPU functor (GPU kernel not registered?)"; exit 1; }
  for sym in $need; do
    grep -qxF "$sym" <<<"$have" || { echo "${op}: $sym used by ${op}_kernels.cc is not defined in ${op}_kernels_gpu.cu.cc"; exit 1; }
  done
done
"$nvcc_bin" "${common[@]}" -c custom_ops/cuda/linr_cuda_capi.cu -o "$out/linr_cuda_capi.o"
ls -la "$out"/*_kernels_gpu.o "$out"/*_kernels_cuda.o "$out/linr_cuda_capi.o"
