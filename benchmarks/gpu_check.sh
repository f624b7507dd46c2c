#!/bin/bash
# The device check for a lent GPU, a few minutes in all: both benchmarks at the paper's sizes, on one card.
#   bash benchmarks/gpu_check.sh            # JSON files in $OUT (default benchmarks/out)
# plan: eager fp32 vs fast (bf16) vs fast + CUDA graphs (torch.compile reduce-overhead), and the whole
# DINO-WM-shaped plan; train: batch 128 x 4 frames at 224 px, eager vs compiled, bf16 autocast.
set -euo pipefail
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python benchmarks/plan_speed.py --device cuda --json "$OUT/plan_bf16.json"
python benchmarks/plan_speed.py --device cuda --compile --dinowm skip --json "$OUT/plan_compiled.json"
python benchmarks/plan_speed.py --device cuda --fp32 --dinowm skip --json "$OUT/plan_fp32.json"
python benchmarks/train_throughput.py --device cuda --batch 128 --steps 10 --warmup 3 --json "$OUT/train.json"
