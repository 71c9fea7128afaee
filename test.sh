#!/usr/bin/env bash
# README command 2: run every test through Bazel (installs first if needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash tools/install.sh
PATH="$PWD/.venv/bin:$PATH" exec bazel test //... "$@"
