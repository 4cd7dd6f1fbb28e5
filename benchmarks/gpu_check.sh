#!/usr/bin/env bash
# The device checks for one NVIDIA GPU (at most 8 minutes on an H200): the device tests on cuda, then
# one bf16 LOOP iteration of a ~0.6B Qwen2-architecture model built from a config (random weights,
# nothing downloaded) against fp32 in the same run: generation and training tokens/s, peak GPU memory;
# with two GPUs or more, two data-parallel ranks (DDP, then FSDP2-sharded) train a few iterations.
#
#   benchmarks/gpu_check.sh         on a CUDA machine (after `make setup`)
#   benchmarks/gpu_check.sh --cpu   the same steps with a tiny model on the CPU (run by the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if [ "${1:-}" = "--cpu" ]; then
  device=cpu hidden=64 layers=2 gpus=0
else
  device=cuda hidden=1536 layers=28
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  gpus=$(nvidia-smi -L | wc -l)
fi

echo "== device tests on $device"
IDAGYM_TEST_DEVICE=$device timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_devices.py

echo "== one LOOP iteration on $device (hidden $hidden, $layers layers), bf16 vs fp32"
timeout 240 "$PY" benchmarks/device_iteration.py --device "$device" --hidden-size "$hidden" --layers "$layers"

if [ "$device" = cpu ] || [ "$gpus" -ge 2 ]; then
  for sharding in none fsdp2; do
    echo "== 2 ranks on $device, train.sharding=$sharding: 5 LOOP iterations on Lookup"
    run=$(mktemp -d)
    timeout 300 "$PY" -m idagym.cli train --num-processes 2 examples/configs/lookup_loop.yaml train.device="$device" \
      train.sharding="$sharding" train.run_dir="$run/run" iterations=5 eval_every=0 eval_before=false progress=false
    rm -rf "$run"
  done
fi
echo "gpu_check: done"
