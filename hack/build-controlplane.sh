#!/usr/bin/env bash
# Compile a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok), the real node's kubelet and kube-proxy, and the cluster add-ons
# (CoreDNS, metrics-server) and the network policy enforcer (kube-router's firewall) from Go modules
# into version-keyed caches. Runs once per machine:
# later calls find the binaries and return at once.
#
# Why from source: there is no container engine here and release binaries cannot be
# downloaded, but the Go module proxy is reachable.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.33.12}
ETCD_VERSION=${ETCD_VERSION:-v3.5.24}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE_ROOT=${AGENTFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentfleet}
BIN_DIR="$CACHE_ROOT/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}/bin"
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.9.0}
ADDONS_DIR="$CACHE_ROOT/addons-coredns-${COREDNS_VERSION}-metrics-server-${METRICS_SERVER_VERSION}/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kwok kwokctl)
ADDONS=(coredns metrics-server)
# kube-router runs with its firewall only (NetworkPolicy enforcement by iptables and ipset); its own
# cache keeps a version change from rebuilding the other add-ons. docs/local-cluster.md says why
# this enforcer and this version.
KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}
NETPOL_DIR="$CACHE_ROOT/kube-router-${KUBE_ROUTER_VERSION}/bin"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-controlplane] %s\n' "$*" >&2; }

all_present() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  for b in "${ADDONS[@]}"; do [[ -x "$ADDONS_DIR/$b" ]] || return 1; done
  [[ -x "$NETPOL_DIR/kube-router" ]]
}

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  echo "$BIN_DIR"
  exit 0
fi
if [[ "${1:-}" == "--print-addons-dir" ]]; then
  echo "$ADDONS_DIR"
  exit 0
fi
if [[ "${1:-}" == "--print-netpol-dir" ]]; then
  echo "$NETPOL_DIR"
  exit 0
fi

if all_present; then
  log "cached in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
mkdir -p "$BIN_DIR" "$ADDONS_DIR" "$NETPOL_DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

build_kwok() {
  [[ -x "$BIN_DIR/kwok" && -x "$BIN_DIR/kwokctl" ]] && return 0
  log "kwok $KWOK_VERSION"
  GOBIN="$BIN_DIR" go install -trimpath \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
}

build_etcd() {
  [[ -x "$BIN_DIR/etcd" ]] && return 0
  log "etcd $ETCD_VERSION"
  # `go install etcd/server@v3.5.x` is refused because its go.mod has replace lines; a tiny
  # wrapper module calling etcdmain.Main builds the same program upstream ships.
  local dir="$WORK/etcd"
  mkdir -p "$dir"
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (
    cd "$dir"
    go mod init agentfleet.local/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
    go mod tidy
    go build -trimpath -o "$BIN_DIR/etcd" .
  )
}

# The module proxy reachable here does not serve every published version: for v1.33.12 it answers
# "403 This module version is not available" for k8s.io/cri-api@v0.33.12 and
# k8s.io/externaljwt@v0.33.12 (both needed by the build). Fall back to the nearest LATER patch of
# the same minor that is served (v0.33.13); for these two modules the Go sources of v0.33.4 and
# v0.33.13 are byte-identical, so the v0.33.12 in between is too. Modules the build never needs
# (cli-runtime, kube-proxy, sample-*) may end up pointing at an unserved version; that is harmless.
served_staging_version() {
  local m=$1 want=$2 base patch v i
  base=${want%.*} patch=${want##*.}
  for ((i = 0; i <= 3; i++)); do
    v="${base}.$((patch + i))"
    # `go list -m` fetches only the .info file; run it outside any module so replaces do not apply.
    if (cd "$WORK" && GOFLAGS='' go list -m "${m}@${v}" >/dev/null 2>&1); then
      [[ $v == "$want" ]] || log "WARNING: proxy does not serve ${m}@${want}; using ${m}@${v}"
      echo "$v"
      return 0
    fi
  done
  echo "$want"
}

build_kubernetes() {
  local b missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [[ -x "$BIN_DIR/$b" ]] || missing=1
  done
  ((missing)) || return 0
  log "kubernetes $K8S_VERSION (cold builds take a while on two cores)"
  local dir="$WORK/k8s" staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init agentfleet.local/k8s >/dev/null 2>&1
    # k8s.io/kubernetes requires its staging modules at v0.0.0 through local replace lines that a
    # dependent module ignores; mirror each of them onto the published staging version.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    [[ -f "$gomod" ]] || { log "could not read go.mod of k8s.io/kubernetes@${K8S_VERSION}"; exit 1; }
    local m
    while read -r m; do
      go mod edit -replace "${m}=${m}@$(served_staging_version "$m" "$staging")"
    done < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    go get "k8s.io/kubernetes@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kubelet@${K8S_VERSION}" \
      "k8s.io/kubernetes/cmd/kube-proxy@${K8S_VERSION}"
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ld="" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
      ld+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.gitCommit=0000000000000000000000000000000000000000"
      ld+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
    done
    # One `go build` for all five shares the compile graph (the node's kubelet and kube-proxy
    # come from the same module graph as the control plane, so their versions match exactly).
    go build -trimpath -ldflags "-s -w ${ld}" -o "$BIN_DIR/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy
  )
}

# CoreDNS (cluster DNS for the real node's pods) and metrics-server (real CPU for the HPA) build
# as they are with `go install`: neither go.mod has replace lines.
build_addons() {
  if [[ ! -x "$ADDONS_DIR/coredns" ]]; then
    log "coredns $COREDNS_VERSION"
    GOBIN="$ADDONS_DIR" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@${COREDNS_VERSION}"
  fi
  if [[ ! -x "$ADDONS_DIR/metrics-server" ]]; then
    log "metrics-server $METRICS_SERVER_VERSION"
    GOBIN="$ADDONS_DIR" go install -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/metrics-server/cmd/metrics-server@${METRICS_SERVER_VERSION}"
  fi
  # Also without replace lines; about a minute and a half with the control plane's cache warm.
  if [[ ! -x "$NETPOL_DIR/kube-router" ]]; then
    log "kube-router $KUBE_ROUTER_VERSION"
    GOBIN="$NETPOL_DIR" go install -trimpath -ldflags "-s -w" \
      "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${KUBE_ROUTER_VERSION}"
  fi
}

build_kwok
build_etcd
build_kubernetes
build_addons

all_present || { log "some binaries are missing from $BIN_DIR"; exit 1; }
"$BIN_DIR/kube-apiserver" --version >&2
log "done: $BIN_DIR"
