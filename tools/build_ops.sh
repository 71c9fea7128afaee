#!/usr/bin/env bash
# Builds the LiNR-TF op library without Bazel, from the one source list below:
#   bash tools/build_ops.sh OUT_DIR [--cuda]      -> OUT_DIR/_linr_ops.so (+ .json)
# CPU build: every op's registration and CPU kernels (g++). --cuda adds the
# GPU kernels: the *_kernels.cc compiled with GOOGLE_CUDA=1 (both device
# registrations of each OpKernel<Device>) and the *_kernels_gpu.cu.cc functors
# (nvcc, sm_90 unless NVCC_ARCH), linked with the static CUDA runtime.
# Used on the GPU machine (nvcc, no Bazel) and by `bazel build --config=cuda
# //custom_ops:_linr_ops.so` (custom_ops/BUILD calls it), so both make the
# identical library. TensorFlow comes from $LINR_PYTHON (default: python3 on
# PATH, or <repo>/.venv/bin/python): its headers, libtensorflow_framework.so.2
# and version, written to OUT_DIR/_linr_ops.json for linr_tf.ops.load_library.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: build_ops.sh OUT_DIR [--cuda]}"; cuda=0
[[ "${2:-}" == "--cuda" ]] && cuda=1
mkdir -p "$out"; out="$(cd "$out" && pwd)"
python="${LINR_PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
read -r tf_inc tf_lib tf_version < <("$python" -c 'import tensorflow as tf; print(tf.sysconfig.get_include(), tf.sysconfig.get_lib(), tf.__version__)' 2>/dev/null | tail -n 1)
[[ -n "${tf_version:-}" ]] || { echo "build_ops: TensorFlow not importable by $python" >&2; exit 1; }

# --- the source list (what Bazel's cc_libraries in custom_ops/BUILD hold) ---
HOST_SRCS=(
  custom_ops/filter/filter_compiler.cc custom_ops/filter/filter_language.cc
  custom_ops/filter/filter_kernels.cc custom_ops/filter/filter_ops.cc
  custom_ops/filter/filter_mask_kernels.cc custom_ops/filter/filter_mask_ops.cc
  custom_ops/topk/topk_kernels.cc custom_ops/topk/topk_ops.cc
  custom_ops/quantization/hamming_kernels.cc custom_ops/quantization/hamming_ops.cc
  custom_ops/quantization/asym_kernels.cc custom_ops/quantization/asym_ops.cc
  custom_ops/rows/rows_kernels.cc custom_ops/rows/rows_ops.cc
  custom_ops/mol/mol_kernels.cc custom_ops/mol/mol_ops.cc
)
GPU_SRCS=($(cd "$repo" && ls custom_ops/*/*_kernels_gpu.cu.cc))
# ---------------------------------------------------------------------------

cxx="${CXX:-g++}"
flags=(-std=c++17 -O3 -fPIC -w -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64
       -I"$repo" -I"$tf_inc")
link=(-L"$tf_lib" -l:libtensorflow_framework.so.2)
if [[ $cuda == 1 ]]; then
  nvcc_bin="$(command -v nvcc || true)"
  [[ -n "$nvcc_bin" ]] || for c in /usr/local/cuda*/bin/nvcc; do [[ -x "$c" ]] && nvcc_bin="$c" && break; done
  [[ -n "$nvcc_bin" ]] || { echo "build_ops: --cuda needs nvcc (PATH or /usr/local/cuda*/bin)" >&2; exit 1; }
  # The toolkit root: $CUDA_HOME, else the first of nvcc's parent, /usr/local/cuda,
  # /usr/local/cuda-* holding include/cuda_runtime.h (nvcc may be a wrapper).
  cuda_home=""
  for c in "${CUDA_HOME:-}" "$(dirname "$(readlink -f "$nvcc_bin")")/.." /usr/local/cuda /usr/local/cuda-*; do
    [[ -n "$c" && -f "$c/include/cuda_runtime.h" ]] && cuda_home="$(cd "$c" && pwd)" && break
  done
  [[ -n "$cuda_home" ]] || { echo "build_ops: no CUDA toolkit (include/cuda_runtime.h) found; set CUDA_HOME" >&2; exit 1; }
  flags+=(-DGOOGLE_CUDA=1 -I"$cuda_home/include")
  link+=(-L"$cuda_home/lib64" -lcudart_static -ldl -lrt -lpthread)
fi
obj="$out/obj"; mkdir -p "$obj"; logs="$(mktemp -d)"; pids=(); names=()
jobs_max="$(nproc)"
compile() {  # name, command...
  local name="$1"; shift
  while (( $(jobs -rp | wc -l) >= jobs_max )); do sleep 0.2; done
  ( cd "$repo" && "$@" ) >"$logs/$name.log" 2>&1 & pids+=($!); names+=("$name")
}
objects=()
for src in "${HOST_SRCS[@]}"; do
  o="$obj/$(basename "${src%.cc}").o"; objects+=("$o")
  compile "$(basename "$src")" "$cxx" "${flags[@]}" -c "$src" -o "$o"
done
if [[ $cuda == 1 ]]; then
  for src in "${GPU_SRCS[@]}"; do
    o="$obj/$(basename "${src%.cu.cc}").o"; objects+=("$o")
    compile "$(basename "$src")" "$nvcc_bin" -std=c++17 -O3 -arch="${NVCC_ARCH:-sm_90}" -x cu \
      --expt-relaxed-constexpr -Xcompiler -fPIC -w -DGOOGLE_CUDA=1 -D_GLIBCXX_USE_CXX11_ABI=1 \
      -DEIGEN_MAX_ALIGN_BYTES=64 -I"$repo" -I"$tf_inc" -c "$src" -o "$o"
  done
fi
rc=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "build_ops: compile failed: ${names[$i]}" >&2; tail -40 "$logs/${names[$i]}.log" >&2; rc=1; }
done
[[ $rc == 0 ]] || exit 1
"$cxx" -shared -o "$out/_linr_ops.so" "${objects[@]}" "${link[@]}"
printf '{"tf_version": "%s", "cuda": %s}\n' "$tf_version" "$([[ $cuda == 1 ]] && echo true || echo false)" \
  > "$out/_linr_ops.json"
echo "build_ops: $out/_linr_ops.so (TF $tf_version, cuda=$cuda)"
