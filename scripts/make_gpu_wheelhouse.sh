#!/usr/bin/env bash
# Wheels a GPU machine without network needs for scripts/gpu_check.sh, saved into .wheels/ (git-ignored).
# The target has torch, transformers, pytorch-lightning, pyarrow, matplotlib, filelock, tqdm (see
# README "GPU check"); it lacks hydra-core, omegaconf and antlr4 (and wandb, math-verify: not needed
# for the check, which logs to CSV on the arithmetic task). Run here, where pip can reach the index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .wheels && mkdir -p .wheels
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation py -d .wheels \
    hydra-core==1.3.8 omegaconf==2.3.1
# antlr4 4.9.3 (what omegaconf pins) is published as an sdist only: build its pure-Python wheel here.
$PY -m pip wheel -q --no-deps -w .wheels antlr4-python3-runtime==4.9.3
ls -la .wheels
