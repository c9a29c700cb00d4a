#!/usr/bin/env bash
# N processes on this machine joined through a local coordinator (CPU is fine):
# the multi-host code path without a cluster.
#   launch/local_processes.sh 2 configs/simclr_sp.py:smoke runs/mp [--config.x=y]
set -euo pipefail
n=${1:?number of processes}; config=${2:?config}; workdir=${3:?workdir}; shift 3
cd "$(dirname "$0")/.."
port=${SSL_PAIRS_COORDINATOR_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < n; i++)); do
  python main.py --multihost --coordinator_address="127.0.0.1:$port" \
    --num_processes="$n" --process_id="$i" --config="$config" \
    --workdir="$workdir" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit "$status"
