#!/usr/bin/env bash
# Regenerates the one copy of the Python stubs (and .pyi) from protos/costmesh/v1/*.proto.
# Usage: scripts/gen-protos.sh [OUT_DIR]   (default: protos/, in place)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-protos}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
"$PY" -m grpc_tools.protoc -I protos \
  --plugin=protoc-gen-mypy="$(dirname "$PY")/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$(dirname "$PY")/protoc-gen-mypy_grpc" \
  --python_out="$out" --grpc_python_out="$out" --mypy_out=quiet:"$out" --mypy_grpc_out=quiet:"$out" \
  protos/costmesh/v1/*.proto
