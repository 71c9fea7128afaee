#!/usr/bin/env bash
# GPU tests on a machine whose TensorFlow sees a GPU (the H200 machine):
#   source .tfw/small/device_setup.sh && bash tests/gpu/run.sh
# Builds the op library with its GPU kernels (tools/build_ops.sh --cuda) unless
# LINR_TF_OPS_LIBRARY names one, runs tests/gpu with pytest and ends with the
# line `gpu-tests: N passed, N failed`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ -z "${LINR_TF_OPS_LIBRARY:-}" ]]; then
  bash tools/build_ops.sh build/ops-cuda --cuda || { echo "gpu-tests: 0 passed, 1 failed"; exit 1; }
  export LINR_TF_OPS_LIBRARY="$PWD/build/ops-cuda/_linr_ops.so"
fi
report="$(mktemp)"
python3 -m pytest -q -p no:cacheprovider tests/gpu --junitxml="$report" "$@"
rc=$?
python3 - "$report" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"gpu-tests: {tests - bad - skipped} passed, {bad} failed, {skipped} skipped")
PY
exit $rc
