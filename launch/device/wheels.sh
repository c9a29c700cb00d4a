#!/usr/bin/env bash
# Downloads into .whl/ the wheels the GPU machine's image lacks, for its
# Python 3.12 on manylinux x86-64: the project's requirements that the image
# does not have (grain, ml_collections, tensorboardX, pytest), and only those
# of their dependencies that it does not have either (array_record,
# cloudpickle, portpicker, iniconfig, pluggy), one version each, the versions
# requirements.txt pins. The image has jax 0.11.2 (CUDA 13), flax, optax,
# orbax-checkpoint, numpy, protobuf, etils, absl-py, PyYAML, pygments,
# packaging, psutil, torch 2.11, torchvision, timm, pillow, matplotlib, tqdm,
# scipy and safetensors. check.sh installs these with --no-deps into a
# temporary site folder. Prints the total size (the kit travels in 64 MiB).
#   bash launch/device/wheels.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
pin() { grep -i "^$1==" requirements.txt | head -1; }
wheels=(
  "$(pin grain)" "$(pin ml_collections)" "$(pin tensorboardX)" "$(pin pytest)"
  "$(pin array_record)"
  cloudpickle==3.1.3 portpicker==1.6.0 iniconfig==2.3.1 pluggy==1.7.0
)
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any \
  -d .whl "${wheels[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
ls -1 .whl
du -cb .whl/*.whl | awk 'END { printf "wheels: %.1f MiB in .whl/\n", $1 / 1048576 }'
if [ -d .devdata ]; then
  du -cb .whl/*.whl .devdata/* | awk 'END { printf "wheels + .devdata: %.1f MiB (limit 64)\n", $1 / 1048576 }'
fi
