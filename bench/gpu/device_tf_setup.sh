# Sourced on the GPU machine after `source .tfw/small/device_setup.sh`:
# installs the pure-Python / cp312 wheels of .tfw/extra (tf_keras, pytest,
# aiohttp, grpcio, tensorflow-serving-api, ...) that the machine's Python lacks
# into /tmp/site, then builds the op library with its GPU kernels into
# build/ops-cuda (kept while the machine stays warm) and exports
# LINR_TF_OPS_LIBRARY. `.tfw/extra` is filled on the CPU machine by
#   bash bench/gpu/prepare_extra.sh
_extra="$(pwd)/.tfw/extra"
if [[ -d "$_extra" && ! -f /tmp/site/.linr_tf_extra ]]; then
  _missing=()
  for _w in "$_extra"/*.whl; do
    _pkg="$(basename "$_w" | cut -d- -f1)"
    _mod="$(python3 - "$_pkg" <<'PY'
import sys
names = {"tf_keras": "tf_keras", "tensorflow_serving_api": "tensorflow_serving",
         "grpcio": "grpc", "attrs": "attr", "aiohappyeyeballs": "aiohappyeyeballs",
         "faiss_cpu": "faiss"}
print(names.get(sys.argv[1], sys.argv[1].lower()))
PY
)"
    python3 -c "import $_mod" 2>/dev/null || _missing+=("$_w")
  done
  if (( ${#_missing[@]} )); then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${_missing[@]}" \
      || echo "device_tf_setup: some wheels of .tfw/extra did not install" >&2
  fi
  touch /tmp/site/.linr_tf_extra
fi
if [[ -z "${LINR_TF_OPS_LIBRARY:-}" ]]; then
  if [[ ! -f build/ops-cuda/_linr_ops.so || -n "${LINR_REBUILD:-}" ]]; then
    _t0=$(date +%s)
    bash tools/build_ops.sh build/ops-cuda --cuda || return 1
    echo "device_tf_setup: op library built in $(( $(date +%s) - _t0 )) s"
  fi
  export LINR_TF_OPS_LIBRARY="$PWD/build/ops-cuda/_linr_ops.so"
fi
# LINR_TF_CUPTI=1: let TF's profiler (bench/tf_profile.py) record GPU kernels.
# TF 2.21 loads libcupti.so.12; the machine has CUDA 13's CUPTI (a C API, used
# here only for activity records): a link under that name, tried as is.
if [[ -n "${LINR_TF_CUPTI:-}" ]]; then
  _cupti="$(ls /usr/local/cuda*/extras/CUPTI/lib64/libcupti.so.* /usr/local/cuda*/lib64/libcupti.so.* 2>/dev/null | head -n 1)"
  if [[ -n "$_cupti" ]]; then
    mkdir -p /tmp/cupti-shim && ln -sf "$_cupti" /tmp/cupti-shim/libcupti.so.12
    export LD_LIBRARY_PATH="/tmp/cupti-shim:${LD_LIBRARY_PATH:-}"
    echo "device_tf_setup: libcupti.so.12 -> $_cupti"
  fi
fi
