#!/bin/bash
# The device check for a lent GPU, a few minutes in all: both benchmarks at the paper's sizes, on one card.
#   bash benchmarks/gpu_check.sh            # JSON files and logs in $OUT (default benchmarks/out)
# Most important first, each step under its own time limit, so a slow step cannot eat the others' time:
#   plan: eager fp32 vs fast bf16 with the whole plan as one CUDA graph, and the whole DINO-WM-shaped plan;
#         the same with torch.compile'd (fused) kernels inside the graph; fp32 inside the graph (agreement);
#         torch.compile reduce-overhead (a graph per predictor call) without the whole-plan graph;
#   train: batch 128 x 4 frames at 224 px, eager vs compiled + fused AdamW, bf16 autocast.
set -uo pipefail
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
step() {  # step NAME SECONDS SCRIPT ARGS...: run one benchmark, keep its log, go on if it fails
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" python "$@" --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.log" | grep -v Warning
    echo "== $name exit ${PIPESTATUS[0]}"
}
step plan_graph_bf16 120 benchmarks/plan_speed.py --device cuda --graph
step plan_graph_compiled_bf16 150 benchmarks/plan_speed.py --device cuda --graph --compile --dinowm skip
step train 150 benchmarks/train_throughput.py --device cuda --batch 128 --steps 10 --warmup 3
step plan_graph_fp32 60 benchmarks/plan_speed.py --device cuda --graph --fp32 --dinowm skip
step plan_compiled_bf16 90 benchmarks/plan_speed.py --device cuda --compile --dinowm skip
