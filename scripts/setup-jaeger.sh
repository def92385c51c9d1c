#!/usr/bin/env bash
# Builds Jaeger v2 (its cmd/jaeger program) from the Go module into $(go env GOPATH)/bin, once: the
# traces UI `costmesh up` starts. `go install module@version` refuses this module (its go.mod has a
# replace directive), so it is built inside the downloaded module, which honours it. A stamp holds the
# version: a second run takes a second.
set -euo pipefail
JAEGER_VERSION=${JAEGER_VERSION:-v1.75.0}  # the Go module tags Jaeger v2 releases as v1.x; its program is cmd/jaeger
GOBIN_DIR=$(go env GOPATH)/bin
stamp="$GOBIN_DIR/.jaeger.version"
if [ -x "$GOBIN_DIR/jaeger" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$JAEGER_VERSION" ]; then
  echo "jaeger: $JAEGER_VERSION in $GOBIN_DIR"
  exit 0
fi
mkdir -p "$GOBIN_DIR"
go mod download "github.com/jaegertracing/jaeger@$JAEGER_VERSION"
module="$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@$JAEGER_VERSION"
(cd "$module" && go build -trimpath -o "$GOBIN_DIR/jaeger" ./cmd/jaeger)
echo "$JAEGER_VERSION" > "$stamp"
echo "jaeger: built $JAEGER_VERSION into $GOBIN_DIR"
