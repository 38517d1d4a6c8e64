#!/bin/bash
# MAISI on a lent GPU: full-size passes with random weights in float16 and bfloat16, and NVIDIA's checkpoint
# layout loaded through our MAISI path (benchmarks/gpu_check.py). Run from the repository root; the results,
# one JSON line each, go to stdout and to benchmarks/gpu_check.jsonl (or $OUT/gpu_check.jsonl on a device machine).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
"$python" benchmarks/gpu_check.py --device cuda "$@" | tee "${OUT:-benchmarks}/gpu_check.jsonl"
