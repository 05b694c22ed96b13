#!/usr/bin/env bash
# Compile Prometheus and promtool from their Go module into a version-keyed cache. Used by the
# tests (real Prometheus servers, `promtool check/test rules`) and by the in-cluster Prometheus
# image of `make dev` (hack/images.sh), so both run the same release.
#
# Why not Debian's package: bookworm ships Prometheus 2.42 built without Kubernetes service
# discovery, and users run 3.x. Only the Kubernetes discoverer is compiled in (Prometheus's own
# remove_all_sd/enable_kubernetes_sd build tags): the cloud SDKs of the others would triple the
# build for nothing the project uses.
#
#   hack/build-prometheus.sh                  build when not cached, print the bin dir
#   hack/build-prometheus.sh --print-bin-dir  print the bin dir only
#   hack/build-prometheus.sh --print-version  print the Prometheus version only
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-3.16.0}
# Prometheus 3.x is published on the module proxy as v0.<major*100+minor>.<patch>: 3.16.0 is v0.316.0.
MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}
CACHE_ROOT=${AGENTFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentfleet}
BIN_DIR="$CACHE_ROOT/prometheus-${PROMETHEUS_VERSION}/bin"

case "${1:-}" in
  --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
  --print-version) echo "$PROMETHEUS_VERSION"; exit 0 ;;
esac

log() { printf '[build-prometheus] %s\n' "$*" >&2; }

if [[ ! -x "$BIN_DIR/prometheus" || ! -x "$BIN_DIR/promtool" ]]; then
  command -v go >/dev/null || { log "go is required to build Prometheus"; exit 1; }
  started=$SECONDS
  log "prometheus and promtool $PROMETHEUS_VERSION (module $MODULE_VERSION), Kubernetes discovery only"
  mkdir -p "$BIN_DIR"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Static binaries: the image that carries prometheus has no libc.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$work" go install -trimpath \
    -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    "github.com/prometheus/prometheus/cmd/prometheus@$MODULE_VERSION" \
    "github.com/prometheus/prometheus/cmd/promtool@$MODULE_VERSION"
  # Moved in only when both built, so an interrupted build is never taken for a cached one.
  mv "$work/prometheus" "$work/promtool" "$BIN_DIR/"
  log "built in $((SECONDS - started))s"
fi
echo "$BIN_DIR"
