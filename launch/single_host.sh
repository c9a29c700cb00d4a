#!/usr/bin/env bash
# One host, every local accelerator: JAX sees all GPUs of the machine and the
# mesh spans them; batch_size is global and must divide by the GPU count.
#   launch/single_host.sh configs/simclr_sp.py runs/simclr_sp [--config.x=y ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?workdir}; shift 2
cd "$(dirname "$0")/.."
exec python main.py --config="$config" --workdir="$workdir" "$@"
