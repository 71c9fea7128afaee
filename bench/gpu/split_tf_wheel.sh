#!/usr/bin/env bash
# Here, after ../shared/gpu-tf/prepare.sh: re-splits the TensorFlow wheel's nine
# 62 MiB parts into 50 MiB parts .tfw/split/part00..part10. A transfer to the GPU
# machine carries the working tree too, within 64 MiB in all; once the tree
# outgrew the 2 MiB that a 62 MiB part leaves, those transfers were refused.
# Send each .tfw/split/partNN as ../shared/gpu-tf/README.md says for .tfw/partNN
# (copy to /tmp/keep/partNN); .tfw/small/device_setup.sh reassembles `part??`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mkdir -p .tfw/split
rm -f .tfw/split/part??
cat .tfw/part?? | split -b 50M -d -a 2 - .tfw/split/part
if [[ "$(cat .tfw/split/part?? | md5sum)" != "$(cat .tfw/part?? | md5sum)" ]]; then
  echo "split_tf_wheel: parts differ from the original" >&2; exit 1
fi
ls .tfw/split
