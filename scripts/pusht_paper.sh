#!/usr/bin/env bash
# Push-T at paper size on one GPU, end to end, resumable: run it again after an interruption.
#
#   1. collect 20,000 episodes x 100 steps at 224 px with the reference's collection policy (`--policy weak`:
#      random actions whose target point stays within 100 units of the block; lzf-compressed frames, all cores;
#      resumable)
#   2. train the `paper` preset: ViT-Tiny 224 px patch 14, predictor depth 6, history 3, batch 128, 10 epochs,
#      AdamW 5e-5, lambda 0.1, 1024 SIGReg projections, bf16 on CUDA
#   3. evaluate with the paper protocol: 50 start/goal pairs from held-out episodes, goal 25 steps ahead,
#      budget 50 steps, CEM 300 samples / 30 elites / 30 iterations / horizon 5, beside a random policy
#
# Expected cost on 1 x H100 with 16 CPU cores: ESTIMATES, not measured on a GPU yet (this project's device
# machine was not lent to the task that wrote this script). Measured pieces: on a 2-core CPU, a 224-px Push-T
# episode takes 0.21 s to simulate and render; the writer spends 0.39 ms per 224-px frame with lzf (3 KB/frame)
# and reading one back takes 0.8 ms. docs/reference.md section 12 gives 0.087 s per eager training step at batch 128 x 4 frames
# on an H100 (0.050 s with torch.compile).
#   collect: 2,000,000 frames, ~6 GB on disk; writer-bound at ~0.04 s/episode -> about 15 min
#   train:   1.53M training clips per epoch (85 clip starts per 100-step episode, 90% of the episodes)
#            -> 11,950 steps/epoch, 119,500 steps in 10 epochs -> about 3 h eager (about 1.7 h with --compile),
#            if 12 loader workers keep up (512 frame reads per step at 0.8 ms each)
#   eval:    2 batched CEM cycles over 50 episodes + 5,000 env steps -> a few minutes
# Paper (L40S): 96% success on Push-T (+-2.8 over 3 seeds), on the reference's demonstration file, which we do not
# have. Why weak data: it is how stable-worldmodel 0.1.1 collects Push-T, and the protocol draws its start/goal
# pairs from the data, so the data policy sets how hard the benchmark is. On our scripted-expert data (the block
# moves in 98% of 25-step windows) even CEM with the TRUE physics as its model solves only 46% of the protocol's
# pairs; on weak data it solves 98% (docs/pusht_difficulty_*.json, scripts/pusht_difficulty.py, 1000 episodes,
# one seed). POLICY=expert collects with the scripted expert instead.
#
# The stages are scripts/paper_run.sh's. Every stage can be shrunk through the environment, e.g. the smoke test in
# tests/scripts runs:
#   OUT=/tmp/pt EPISODES=6 STEPS=40 IMAGE_SIZE=32 PRESET=tiny DEVICE=cpu WORKERS=1 \
#   TRAIN_ARGS="--steps 4" EVAL_ARGS="--episodes 2 --samples 8 --elites 2 --iterations 1" scripts/pusht_paper.sh
set -euo pipefail
ENV=pusht LABEL=Push-T EPISODES=${EPISODES:-20000} POLICY=${POLICY:-weak} STEPS=${STEPS:-100} \
  OUT=${OUT:-runs/pusht_paper} exec bash "$(dirname "$0")/paper_run.sh"
