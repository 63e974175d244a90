#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment with the pinned BasicSR + MMagic stack.
#
#   bash scripts/setup_env.sh            # .venv with mmcv-lite (pure Python, no mmcv.ops)
#   EFFSR_FULL_MMCV=1 bash scripts/...   # build full mmcv 2.1.0 with CPU ops instead (9-16 min on 2 cores)
#   EFFSR_VENV=/path/venv bash scripts/... # another location
#
# Idempotent: a stamp (hash of this script, constraints.txt and setup.cfg) skips a complete install.
# Every pip call goes through constraints.txt so that torch stays the 2.13.0 CPU build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EFFSR_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
FULL_MMCV="${EFFSR_FULL_MMCV:-0}"
CONSTRAINTS="$ROOT/constraints.txt"

stamp_value="$(cat "$0" "$CONSTRAINTS" "$ROOT/setup.cfg" | sha256sum | cut -c1-16)-mmcv$FULL_MMCV"
stamp_file="$VENV/.effsr-setup-stamp"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp_value" ]]; then
  exit 0
fi

start=$(date +%s)
log() { echo "[setup_env $(( $(date +%s) - start ))s] $*"; }

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "$@"; }

log "build tools"
pip_install setuptools wheel
log "torch (CPU build)"
pip_install torch torchvision numpy
log "BasicSR (no build isolation: its setup_requires would download a CUDA torch)"
pip_install "scipy<2" pyyaml
pip_install --no-build-isolation basicsr==1.4.2
log "mmengine + mmcv"
if [[ "$FULL_MMCV" == "1" ]]; then
  pip_install ninja
  "$PY" -m pip uninstall --quiet --yes mmcv-lite || true
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" pip_install --no-build-isolation mmengine mmcv==2.1.0
else
  pip_install mmengine mmcv-lite==2.1.0
fi
log "MMagic without its declared dependencies (they pull versions that break it), then the set that works"
pip_install --no-deps mmagic==1.2.0 openmim==0.3.9
pip_install click requests einops safetensors tqdm imageio diffusers huggingface_hub transformers lpips pandas \
  resize-right albumentations model-index tabulate colorama \
  lmdb opencv-python scikit-image tensorboard matplotlib pytest
log "ONNX export and its verification (effsr_core.export); OpenVINO, a runtime backend of the profiler"
pip_install onnx onnxruntime openvino
log "this project (editable)"
pip_install --no-deps --no-build-isolation -e "$ROOT"
log "start-up hook for the environment fixes (effsr_core.compat)"
"$PY" -m effsr_core.compat install-hook

"$PY" - <<'EOF'
import torch
assert torch.__version__.startswith('2.13.0'), torch.__version__
assert torch.version.cuda is None, 'a CUDA build of torch was installed'
import onnx, onnxruntime, openvino  # noqa: E401  (export verification, profiler backends)
EOF
echo "$stamp_value" > "$stamp_file"
log "done: $VENV"
