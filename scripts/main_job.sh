#!/usr/bin/env bash
# The main job: a real run on the bundled offline data, on CPU, in a few minutes.
#   1. install the pinned stack into .venv (skipped when already done)
#   2. generate the offline datasets from scikit-image's photos (skipped when already there)
#   3. train a small BasicVSR with BasicSR's own pipeline (validation + checkpoints)
#   4. SSL-prune it at ratio 0.5 in one BasicSR run (regularise -> prune -> fine-tune with TF)
#   5. profile both with the NTIRE protocol and print the before/after table
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
stage() { echo; echo "=== [main job $(( $(date +%s) - start ))s] $*"; }

stage "environment"
bash scripts/setup_env.sh
PY=.venv/bin/python
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

stage "offline data"
$PY -m effsr_core.data.make_offline_data --root data/offline --seed 0

stage "train a small BasicVSR (BasicSR VideoRecurrentModel)"
$PY -m effsr_core.train -opt options/basicsr/demo/train_BasicVSR_tiny_offline.yml

stage "SSL pruning of that checkpoint (BasicSR, model_type SSLPruningModel)"
$PY -m effsr_core.train -opt options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml

stage "NTIRE-style efficiency profile, before vs after (per frame, LR 180x320, SpyNet reported apart)"
mkdir -p results
$PY -m effsr_core.profile \
  --model BasicVSR-tiny=options/basicsr/demo/train_BasicVSR_tiny_offline.yml:experiments/demo_BasicVSR_tiny_offline/models/net_g_latest.pth \
  --model SSL-0.5=options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml:experiments/demo_SSL_BasicVSR_tiny_offline/models/net_g_latest.pth \
  --lr-size 180x320 --frames 3 \
  --dataset-gt data/offline/video_sr/train_sharp --dataset-lq data/offline/video_sr/train_sharp_bicubic/X4 \
  --dataset-clips 000 --crop-border 0 \
  --json results/main_job_profile.json

stage "done: experiments/, tb_logger/ and results/main_job_profile.json"
