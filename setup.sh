#!/usr/bin/env bash
# README command 1: install everything, then run the demo
# (generate -> train -> build index -> export -> query with and without filters).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash tools/install.sh
exec .venv/bin/python -m linr_tf demo "$@"
