#!/usr/bin/env bash
# One-GPU check, under 8 minutes, on a machine with no network that has torch, transformers and
# pytorch-lightning but not hydra-core/omegaconf: installs those from .wheels/ (made here by
# scripts/make_gpu_wheelhouse.sh, carried with the checkout), then
#   1. profile.py on the shipped tiny policy, on the GPU (hf engine);
#   2. a short train.py in bf16 (trainer=gpu, hf engine), reusing that profile;
#   3. the throughput benchmark on a random Qwen2.5-0.5B-shaped model (rollout and training tokens/s, MFU).
# Writes gpu_check.log and bench.json into ${OUT:-outputs/gpu_check}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
exec > >(tee "$OUT/gpu_check.log") 2>&1
start=$(date +%s)
if ! $PY -c "import hydra, omegaconf" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/sgpo_site .wheels/*.whl
    export PYTHONPATH=/tmp/sgpo_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline PYTHONUNBUFFERED=1
date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers, pytorch_lightning as pl; print('torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', pl.__version__)"
WORK=/tmp/sgpo_gpu_check
echo "== 1. profile.py (tiny policy, GPU)"
$PY profile.py paths.output_dir=$WORK profile.device=cuda
echo "== 2. train.py (trainer=gpu, bf16-mixed, 30 steps)"
$PY train.py trainer=gpu paths.output_dir=$WORK paths.run_dir=$WORK/run train.max_steps=30 \
    eval.every_n_steps=0 checkpoint.every_n_steps=0 logger=csv
$PY -c "import json; m=json.load(open('$WORK/run/metrics.json')); print({k: m[k] for k in ('test/pass@1_before', 'test/pass@1', 'compute/total_flops', 'train/steps', 'wall_s')})"
echo "== 3. throughput: random Qwen2.5-0.5B shape, bf16"
$PY scripts/bench_gpu_throughput.py | tee "$OUT/bench.json"
echo "gpu_check done in $(( $(date +%s) - start )) s"
