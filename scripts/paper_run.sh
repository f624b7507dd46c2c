#!/usr/bin/env bash
# One environment at paper size on one GPU, end to end, resumable: run it again after an interruption.
# Called by scripts/pusht_paper.sh, reacher_paper.sh and cube_paper.sh, which set ENV and the paper's sizes
# (and say what each costs); every variable below can be overridden from the environment.
#
#   1. collect EPISODES episodes x STEPS steps at IMAGE_SIZE px with POLICY (lzf-compressed frames, all cores),
#      resumable (`lewm collect --resume`) and renamed when complete, so a crash never leaves a short file
#   2. train the PRESET preset (paper: ViT-Tiny 224 px patch 14, predictor depth 6, history 3, batch 128,
#      10 epochs, AdamW 5e-5, lambda 0.1, 1024 SIGReg projections, bf16 on CUDA), resumed when interrupted
#   3. evaluate with the paper protocol: 50 start/goal pairs from held-out episodes, goal 25 steps ahead,
#      budget 50 steps, CEM 300 samples / 30 elites / horizon 5 (30 iterations on Push-T, 10 elsewhere), beside
#      a random policy on the same pairs
set -euo pipefail

ENV=${ENV:?set ENV to two-room, pusht, reacher or cube}
OUT=${OUT:-runs/${ENV}_paper}
EPISODES=${EPISODES:-10000}
POLICY=${POLICY:-expert}
STEPS=${STEPS:-200}
IMAGE_SIZE=${IMAGE_SIZE:-224}
WORKERS=${WORKERS:-$(nproc)}
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
COLLECT_ARGS=${COLLECT_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:---data.num-workers 12}
EVAL_ARGS=${EVAL_ARGS:-}
LABEL=${LABEL:-$ENV}
PREFIX=${PREFIX:-$ENV}

mkdir -p "$OUT"
DATA="$OUT/${PREFIX}_${POLICY}_train.h5"
RUN="$OUT/run"

if [ -f "$DATA" ]; then
  echo "[1/3] reusing $DATA"
else
  echo "[1/3] collecting $EPISODES $POLICY $LABEL episodes x $STEPS steps at $IMAGE_SIZE px -> $DATA"
  PARTIAL="$OUT/${PREFIX}_${POLICY}_train.partial.h5"
  # shellcheck disable=SC2086  # COLLECT_ARGS holds several flags
  lewm collect --env "$ENV" --policy "$POLICY" --episodes "$EPISODES" --steps "$STEPS" --image-size "$IMAGE_SIZE" \
    --workers "$WORKERS" --compression lzf --out "$PARTIAL" --resume $COLLECT_ARGS
  mv "$PARTIAL" "$DATA"
fi

RESUME=()
if [ -f "$RUN/checkpoints/last.pt" ]; then
  RESUME=(--resume)
fi
echo "[2/3] training the $PRESET preset in $RUN"
# shellcheck disable=SC2086  # TRAIN_ARGS holds several flags
lewm train --preset "$PRESET" --data "$DATA" --out "$RUN" --device "$DEVICE" "${RESUME[@]}" $TRAIN_ARGS

echo "[3/3] planning towards goals 25 steps ahead, beside a random policy on the same start/goal pairs"
# shellcheck disable=SC2086
lewm eval --run "$RUN" --env "$ENV" --device "$DEVICE" $EVAL_ARGS
