#!/usr/bin/env bash
# N processes on this machine joined through a local coordinator (CPU is fine):
# the multi-host code path without a cluster.
#   launch/local_processes.sh 2 configs/simclr_sp.py:smoke runs/mp [--config.x=y]
# $PYTHON names the interpreter (default python3), so a caller in a virtualenv
# passes its own.
set -euo pipefail
n=${1:?number of processes}; config=${2:?config}; workdir=${3:?workdir}; shift 3
cd "$(dirname "$0")/.."
port=${SSL_PAIRS_COORDINATOR_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < n; i++)); do
  "${PYTHON:-python3}" main.py --multihost --coordinator_address="127.0.0.1:$port" \
    --num_processes="$n" --process_id="$i" --config="$config" \
    --workdir="$workdir" "$@" &
  pids+=($!)
done
# SIGTERM/SIGINT to this script reaches every process: each saves the same
# step and exits 75 (rerun the same command to resume).
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
status=0
for pid in "${pids[@]}"; do
  # A trapped signal interrupts wait: wait again until the process exits.
  while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
  code=0; wait "$pid" || code=$?
  [ "$code" -ne 0 ] && status=$code
done
exit "$status"
