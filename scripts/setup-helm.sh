#!/usr/bin/env bash
# Installs what tests/integration/test_deploy_chart.py validates the Helm chart with, into
# "$(go env GOPATH)/bin": helm (v4, built from its Go module: no release binary is downloaded) and
# tools/manifestcheck (rendered manifests decoded strictly into k8s.io/api and KubeRay types).
#
# Idempotent: helm is rebuilt only when the binary there is not HELM_VERSION, manifestcheck only when its
# sources (main.go, go.mod, go.sum) changed since it was built; a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
GOBIN_DIR="$(go env GOPATH)/bin"
mkdir -p "$GOBIN_DIR"

# `go version -m` reads the module version the binary was built from (helm's own `version` shows v4.3).
if [ -x "$GOBIN_DIR/helm" ] && go version -m "$GOBIN_DIR/helm" | grep -Eq "^\s+mod\s+helm.sh/helm/v4\s+$HELM_VERSION\s"; then
  echo "helm: $HELM_VERSION"
else
  echo "helm: building $HELM_VERSION (a few minutes the first time)"
  GOBIN="$GOBIN_DIR" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi

stamp="$GOBIN_DIR/.manifestcheck.sha256"
want="$(cd tools/manifestcheck && cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)"
if [ -x "$GOBIN_DIR/manifestcheck" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "manifestcheck: up to date"
else
  echo "manifestcheck: building"
  (cd tools/manifestcheck && GOBIN="$GOBIN_DIR" go install -buildvcs=false .)
  echo "$want" > "$stamp"
fi
