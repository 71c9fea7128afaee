#!/bin/sh
# Python interpreter used by Bazel's py_binary/py_test (see BUILD).
#
# Bazel runs this file through a runfiles symlink; following the links leads back
# to third_party/python/python3.sh in the source tree, whose repo root holds the
# venv. Order: $LINR_PYTHON, <repo root>/.venv/bin/python, python3 on PATH.
if [ -n "${LINR_PYTHON:-}" ]; then
  exec "$LINR_PYTHON" "$@"
fi
self="$(readlink -f "$0" 2>/dev/null || echo "$0")"
root="$(cd "$(dirname "$self")/../.." 2>/dev/null && pwd)"
if [ -n "$root" ] && [ -x "$root/.venv/bin/python" ]; then
  exec "$root/.venv/bin/python" "$@"
fi
echo "linr_tf: no venv at ${root:-?}/.venv (set LINR_PYTHON); falling back to python3 on PATH" >&2
exec python3 "$@"
