#!/usr/bin/env bash
# Creates the LiteLLM proxy environment (.venv-litellm) that `costmesh bench overhead` compares against.
# A separate environment: the proxy pins its own FastAPI, pydantic and OpenAI SDK versions. 1.107.0 was
# withdrawn; the version is pinned below it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COSTMESH_LITELLM_VENV:-.venv-litellm}
LITELLM_VERSION=1.106.12

if [ -x "$VENV/bin/litellm" ] && "$VENV/bin/python" -c "import litellm" 2>/dev/null; then
  echo "litellm env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || uv venv --quiet --python 3.11 "$VENV"
uv pip install --quiet --python "$VENV/bin/python" "litellm[proxy]==$LITELLM_VERSION"
echo "litellm env ready: $VENV"
