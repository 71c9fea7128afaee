#!/usr/bin/env bash
# cuda_compile_test: the CUDA objects produced by nvcc exist and are non-empty.
set -euo pipefail
for f in "$@"; do
  if [[ ! -s "$f" ]]; then echo "missing or empty: $f" >&2; exit 1; fi
  echo "ok: $f ($(stat -c %s "$f") bytes)"
done
