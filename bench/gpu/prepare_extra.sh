#!/usr/bin/env bash
# Here (the CPU machine, which reaches PyPI): downloads into .tfw/extra the cp312
# wheels the GPU machine's Python lacks for the TF tests, benchmarks and the
# model server (tf_keras, pytest, hypothesis, aiohttp, grpcio,
# tensorflow-serving-api, redis, h5py and their dependencies), pinned to the
# versions of requirements.txt / the venv. Run after ../shared/gpu-tf/prepare.sh;
# carry ".tfw/extra" with ".tfw/small"; bench/gpu/device_tf_setup.sh installs them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
pip=.venv/bin/pip
pins="$($pip freeze | grep -iE '^(tf_keras|tf-keras|tensorflow-serving-api|tensorflow_serving_api|aiohttp|grpcio|multidict|yarl|propcache|frozenlist|aiosignal|attrs|aiohappyeyeballs|pytest|pluggy|iniconfig|packaging|hypothesis|sortedcontainers|h5py|redis)==')"
mkdir -p .tfw/extra
# shellcheck disable=SC2086
$pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d .tfw/extra $pins
# Anchors of bench/cpu_avx512.py (optional: the bench runs without them and
# says so): FAISS (pinned faiss-cpu, cp312 manylinux wheel) and TFRS.
$pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  -d .tfw/extra faiss-cpu==1.15.1 tensorflow-recommenders==0.7.7 \
  || echo "prepare_extra: faiss-cpu / tensorflow-recommenders wheels not downloaded (bench/cpu_avx512.py runs without them)" >&2
ls .tfw/extra
