#!/usr/bin/env bash
# Called by the //custom_ops/cuda:cuda_objects genrule (runs unsandboxed).
#   nvcc_build.sh TF_HEADER OUT_FILTER_O OUT_TOPK_O OUT_CAPI_O OUT_HAMMING_O
# TF_HEADER: path of include/tensorflow/core/framework/op_kernel.h of the pip
# TensorFlow (its include dir is derived from it). Fails loudly without nvcc.
set -euo pipefail
tf_header="$1"; out_filter="$PWD/$2"; out_topk="$PWD/$3"; out_so="$PWD/$4"; out_hamming="$PWD/$5"
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
tf_flags=(-x cu -DGOOGLE_CUDA=1 -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64
          --expt-relaxed-constexpr -I"$tf_inc" -w)
log="$(mktemp -d)"
"$nvcc_bin" "${common[@]}" "${tf_flags[@]}" -c custom_ops/filter/filter_mask_kernels_gpu.cu.cc \
  -o "$out_filter" >"$log/f" 2>&1 & p1=$!
"$nvcc_bin" "${common[@]}" "${tf_flags[@]}" -c custom_ops/topk/topk_kernels_gpu.cu.cc \
  -o "$out_topk" >"$log/t" 2>&1 & p2=$!
"$nvcc_bin" "${common[@]}" "${tf_flags[@]}" -c custom_ops/quant/hamming_kernels_gpu.cu.cc \
  -o "$out_hamming" >"$log/h" 2>&1 & p3=$!
rc=0
wait $p1 || { echo "nvcc failed: filter_mask_kernels_gpu.cu.cc"; cat "$log/f"; rc=1; }
wait $p2 || { echo "nvcc failed: topk_kernels_gpu.cu.cc"; cat "$log/t"; rc=1; }
wait $p3 || { echo "nvcc failed: hamming_kernels_gpu.cu.cc"; cat "$log/h"; rc=1; }
[[ $rc == 0 ]] || exit 1
"$nvcc_bin" "${common[@]}" -c custom_ops/cuda/linr_cuda_capi.cu -o "$out_so"
ls -la "$out_filter" "$out_topk" "$out_hamming" "$out_so"
