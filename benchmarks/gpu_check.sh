#!/usr/bin/env bash
# The GPU checks of benchmarks/gpu_check.py in one command, on a machine with its own PyTorch (no package registry):
# installs the wheels carried in .whl/ (transformers 5.24 and PyAV for this project) into /tmp/site, then runs the
# checks from this working tree. The JSON goes to $OUT/gpu_check.json when $OUT is set, else ./gpu_check.json.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:$PWD/benchmarks:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
output="${OUT:-.}/gpu_check.json"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
timeout 470 python3 benchmarks/gpu_check.py --output "$output" "$@"
status=$?
echo "gpu_check: exit $status, results in $output"
exit $status
