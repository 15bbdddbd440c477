#!/usr/bin/env bash
# MANs end to end on built-in synthetic recordings, no dataset needed:
#   synthetic .skeleton files -> process_data.py -> train_MANs.py -> evaluate.py
# 800 recordings of 10 actions (chance: 10 %), cross-subject split, the demo's 50 x 50 network with the
# paper's optimiser settings, except 15 epochs of batch 32 (ours, to fit the time).
# Measured on 2 shared CPU cores (TensorFlow backend): see the figures the README quotes.
# Everything goes to runs/demo (or $DEMO_DIR); running it again starts over.
set -euo pipefail
cd "$(dirname "$0")"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
DEMO_DIR="${DEMO_DIR:-runs/demo}"
start=$(date +%s)

python process_data.py --synthetic "$DEMO_DIR/skeletons" --samples 800 --actions 10 --seed 0 \
    --out "$DEMO_DIR/synthetic.h5" --workers 2 --overwrite --quiet
python train_MANs.py --data "$DEMO_DIR/synthetic.h5" --benchmark xsub --out "$DEMO_DIR/run" \
    --epochs 15 --batch-size 32 --overwrite
echo "== test split, the checkpoint as saved (best validation epoch):"
python evaluate.py "$DEMO_DIR/run/best.keras" --data "$DEMO_DIR/synthetic.h5" --benchmark xsub
echo "== the same checkpoint with its BatchNormalization statistics recomputed on the training samples:"
python evaluate.py "$DEMO_DIR/run/best.keras" --data "$DEMO_DIR/synthetic.h5" --benchmark xsub \
    --recompute-bn-stats --out "$DEMO_DIR/run/eval_bnstats"
echo "== one raw recording, preprocessed like the training data:"
python evaluate.py "$DEMO_DIR/run/best.keras" --skeleton "$DEMO_DIR/skeletons/$(ls "$DEMO_DIR/skeletons" | head -n 1)" --top 3
echo "demo finished in $(( $(date +%s) - start )) s; reports in $DEMO_DIR/run"
