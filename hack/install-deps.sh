#!/usr/bin/env bash
# Install what a fresh machine lacks for the main job and the tests: Debian's redis-server (a real
# server the tests start), containerd, runc, buildah, debootstrap and the CNI plugins (the real
# node and its images), the project's Python environment in .venv, and Prometheus and promtool
# compiled from their Go module (hack/build-prometheus.sh), linked into .venv/bin.
# Idempotent and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[install-deps] %s\n' "$*" >&2; }

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v wrk >/dev/null || need_apt+=(wrk)  # the runtime benchmark's load generator
# The real node (hack/lib/node.sh) and its images (hack/images.sh): no Docker engine needed.
command -v containerd >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || need_apt+=(runc)
command -v buildah >/dev/null || need_apt+=(buildah)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v ipset >/dev/null || need_apt+=(ipset)  # kube-router's firewall (NetworkPolicy)
command -v conntrack >/dev/null || need_apt+=(conntrack)
command -v ip >/dev/null || need_apt+=(iproute2)
[[ -x /usr/lib/cni/bridge ]] || need_apt+=(containernetworking-plugins)
if ((${#need_apt[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  log "installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start system services; the tests run their own instances on free ports.
  for svc in redis-server containerd; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  log "creating .venv and installing agentfleet[dev]"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The tests and `make` put .venv/bin first on PATH, so these are the prometheus and promtool
# they run, whatever else the machine has.
prometheus_bin=$(hack/build-prometheus.sh)
for tool in prometheus promtool; do
  ln -sfn "$prometheus_bin/$tool" ".venv/bin/$tool"
done
