#!/usr/bin/env bash
# The main job: a real run on the bundled offline data, on CPU, in under 10 minutes on 2 cores.
# Each step has a time budget on 2 cores (install and data as they are), so that later methods' demos still fit:
#   1. install the pinned stack into .venv (skipped when already done)                 ~1.5-2.5 min
#   2. generate the offline datasets from scikit-image's photos (skipped when there)    ~35-55 s
#   3. train a small BasicVSR with BasicSR's own pipeline (validation + checkpoints)    <= 1.5 min
#   4. SSL-prune it at ratio 0.5 in one BasicSR run (regularise -> prune -> fine-tune)   <= 1.5 min
#   5. profile both with the NTIRE protocol and print the before/after table            <= 1 min
#   6. a short multigrid BasicVSR run (4 spatial x temporal stages, Eq. 1 LR)             <= 1.5 min
#   7. MemSR: train a small EDSR teacher, convert it to its exact plain form (equivalence
#      checked), initialise a plain student (Alg. 1, theta 0.14), distil it, profile all 3 <= 2 min
# At the end it prints the time of each step and the total.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
PY=.venv/bin/python
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# OpenMP threads that spin while they wait make the small convolutions of these tiny networks 10x slower as soon
# as another process holds one of the cores (measured on 2 cores); sleeping threads do not have that problem.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

step_times=()
step() {  # step NAME DESCRIPTION COMMAND...: run one step and record its wall-clock seconds under NAME
  local name=$1 description=$2 step_start
  shift 2
  step_start=$(date +%s)
  echo; echo "=== [main job $(( step_start - start ))s] $description"
  "$@"
  step_times+=("$name $(( $(date +%s) - step_start ))")
}

profile() {  # 2 frames at one LR size; no extra warm-up forward: the peak-memory forward just before is one
  mkdir -p results
  $PY -m effsr_core.profile \
    --model BasicVSR-tiny=options/basicsr/demo/train_BasicVSR_tiny_offline.yml:experiments/demo_BasicVSR_tiny_offline/models/net_g_latest.pth \
    --model SSL-0.5=options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml:experiments/demo_SSL_BasicVSR_tiny_offline/models/net_g_latest.pth \
    --lr-size 180x320 --frames 2 --warmup 0 \
    --dataset-gt data/offline/video_sr/train_sharp --dataset-lq data/offline/video_sr/train_sharp_bicubic/X4 \
    --dataset-clips 000 --dataset-frames 20 --crop-border 0 \
    --json results/main_job_profile.json --plot results/main_job_profile.png
}

memsr() {  # teacher -> exact plain form -> winning initialisation -> distillation -> profile of the three
  local teacher=options/basicsr/memsr/demo_EDSR_teacher_x4_offline.yml
  local weights=experiments/demo_EDSR_teacher_x4_offline/models/net_g_latest.pth
  local made=experiments/pretrained_models/memsr
  $PY -m effsr_core.train -opt $teacher
  $PY -m memsr_plugin.convert -opt $teacher --checkpoint $weights --output $made --name demo_EDSR_teacher_x4_plain
  $PY -m memsr_plugin.init -opt $teacher --checkpoint $weights --theta 0.14 --output $made \
    --distill-options options/basicsr/memsr/demo_MemSR_distill_x4_offline.yml
  $PY -m effsr_core.train -opt $made/demo_MemSR_distill_x4_offline.yml
  mkdir -p results
  $PY -m effsr_core.profile --model EDSR-teacher=$teacher:$weights \
    --model plain-equivalent=$made/demo_EDSR_teacher_x4_plain.yml:$made/demo_EDSR_teacher_x4_plain.pth \
    --model MemSR-student=$made/demo_MemSR_distill_x4_offline.yml:experiments/demo_MemSR_distill_x4_offline/models/net_g_latest.pth \
    --input-size 3x180x320 --warmup 0 \
    --dataset-gt data/offline/image_sr/val/HR --dataset-lq data/offline/image_sr/val/LR_bicubic/X4 \
    --json results/main_job_memsr_profile.json --plot results/main_job_memsr_profile.png
}

step environment "environment" bash scripts/setup_env.sh
step data "offline data" $PY -m effsr_core.data.make_offline_data --root data/offline --seed 0
step basicvsr "train a small BasicVSR (BasicSR VideoRecurrentModel)" \
  $PY -m effsr_core.train -opt options/basicsr/demo/train_BasicVSR_tiny_offline.yml
step ssl "SSL pruning of that checkpoint (BasicSR, model_type SSLPruningModel)" \
  $PY -m effsr_core.train -opt options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml
step profile "NTIRE-style efficiency profile, before vs after (per frame, LR 180x320, SpyNet reported apart)" profile
step multigrid "multigrid training of a small BasicVSR (BasicSR VideoRecurrentModel + a multigrid block)" \
  $PY -m effsr_core.train -opt options/basicsr/multigrid/demo_multigrid_BasicVSR_tiny_offline.yml
step memsr "MemSR: EDSR teacher -> exact plain form -> initialised, distilled plain student; profile of the three" \
  memsr

echo; echo "=== [main job $(( $(date +%s) - start ))s] done: experiments/, tb_logger/, results/main_job_profile.{json,png} and results/main_job_memsr_profile.{json,png}"
echo; echo "Time per step (wall clock, OMP_NUM_THREADS=$OMP_NUM_THREADS):"
printf '  %-12s %5s\n' step seconds
for entry in "${step_times[@]}"; do
  printf '  %-12s %5s\n' $entry
done
printf '  %-12s %5s\n' total $(( $(date +%s) - start ))
