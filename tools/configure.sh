#!/usr/bin/env bash
# Prepare the Bazel build: link the venv's TensorFlow pip package into
# third_party/tensorflow_pip (used by @local_tensorflow in WORKSPACE).
# Idempotent and non-interactive. Python: $LINR_PYTHON, else <repo>/.venv/bin/python.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${LINR_PYTHON:-$repo_root/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
  echo "configure: no Python interpreter at $python (create the venv or set LINR_PYTHON)" >&2
  exit 1
fi

tf_dir="$("$python" -c 'import os, tensorflow as tf; print(os.path.dirname(tf.__file__))' 2>/dev/null | tail -n 1)"
if [[ -z "$tf_dir" || ! -f "$tf_dir/libtensorflow_framework.so.2" || ! -d "$tf_dir/include" ]]; then
  echo "configure: could not find TensorFlow (libtensorflow_framework.so.2 + include/) via $python" >&2
  exit 1
fi

link="$repo_root/third_party/tensorflow_pip"
if [[ -L "$link" && "$(readlink "$link")" == "$tf_dir" ]]; then
  echo "configure: third_party/tensorflow_pip -> $tf_dir (unchanged)"
else
  if [[ -e "$link" && ! -L "$link" ]]; then
    echo "configure: $link exists and is not a symlink; remove it first" >&2
    exit 1
  fi
  ln -sfn "$tf_dir" "$link"
  echo "configure: third_party/tensorflow_pip -> $tf_dir"
fi
echo "configure: py_test interpreter: $python (via third_party/python/python3.sh)"
