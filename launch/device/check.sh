#!/usr/bin/env bash
# The one command a lent GPU machine runs (see launch/device/check.py for the
# stages and their budgets; about 8 minutes on an H200):
#   bash launch/device/check.sh            # with .whl/ and .devdata/ carried
#   bash launch/device/check.sh --tiny     # the same stages, tiny, on a CPU
# Installs the wheels of .whl/ (launch/device/wheels.sh) into a temporary site
# folder, unpacks .devdata/cifar10.zip (launch/device/data.py), runs every
# stage and writes device_report.md/.json to --out (default $OUT when set,
# else runs/device_check).
set -uo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
# The device's copy of the checkout is not pip-installed: put it on the path.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
tiny=()
out=${OUT:-runs/device_check}
for arg in "$@"; do
  case "$arg" in
    --tiny) tiny=(--tiny) ;;
    --out=*) out=${arg#--out=} ;;
    *) echo "check.sh: unknown argument $arg (use --tiny, --out=DIR)" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
if [ ${#tiny[@]} -eq 0 ]; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$python" -m pip install --quiet --no-index --no-deps --target "$work/site" \
      .whl/*.whl >"$out/wheels_install.log" 2>&1 \
      || echo "check.sh: installing .whl/ failed (see $out/wheels_install.log)" >&2
    export PYTHONPATH="$work/site:$PYTHONPATH"
  else
    echo "check.sh: no .whl/ here; using the installed packages" >&2
  fi
  if [ ! -f .devdata/cifar10.zip ]; then
    echo "check.sh: .devdata/cifar10.zip is missing; run python launch/device/data.py" >&2
    exit 2
  fi
  "$python" -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    .devdata/cifar10.zip "$work"
  data="$work/cifar10"
else
  data=$("$python" launch/device/check.py --make_tiny_data "$work/tiny")
fi
# Let JAX and PyTorch share the GPU: no up-front grab of 75 % of its memory.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec "$python" launch/device/check.py "${tiny[@]}" --out="$out" --data="$data"
