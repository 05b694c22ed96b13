#!/usr/bin/env bash
# The main job on the embedded default: the local control plane (already started by `make cluster`),
# the CRDs, the operator as a local process, and the samples; then what `kubectl get agentfleet` shows.
#   hack/dev.sh up     start (idempotent: a running operator is reused)
#   hack/dev.sh down   stop the operator it started
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.cluster"
PIDFILE="$STATE/pids/operator.pid"
LOG="$STATE/logs/operator.log"
export KUBECONFIG="$STATE/kubeconfig"

log() { printf '[dev] %s\n' "$*" >&2; }

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

down() {
  if running; then
    log "stopping the operator started by 'make dev' (pid $(cat "$PIDFILE"))"
    kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true
    for _ in $(seq 50); do running || break; sleep 0.2; done
    if running; then kill -KILL "$(cat "$PIDFILE")" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
}

up() {
  [[ -f $KUBECONFIG ]] || { log "no local cluster: run 'make cluster' first"; exit 1; }
  log "installing the CRDs"
  kubectl apply --server-side --force-conflicts -k "$ROOT/crds" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd/agents.agentfleet.dev \
    crd/connectors.agentfleet.dev crd/statepolicies.agentfleet.dev >/dev/null
  # The local cluster has no storage provisioner; a small volume lets the sample's Redis bind its claim.
  kubectl apply -f "$ROOT/hack/dev-volume.yaml" >/dev/null
  if running; then
    log "operator already running (pid $(cat "$PIDFILE")), logs: .cluster/logs/operator.log"
  else
    mkdir -p "$STATE/pids" "$STATE/logs"
    log "starting the operator, logs: .cluster/logs/operator.log"
    # setsid: the operator outlives this script and make; its stdio goes to the log only.
    setsid "$ROOT/.venv/bin/agentfleet-operator" --all-namespaces --metrics-port 19090 --health-port 18081 \
      </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 100); do
      curl -fsS http://127.0.0.1:18081/readyz >/dev/null 2>&1 && break
      running || { log "the operator exited; last lines of its log:"; tail -20 "$LOG" >&2; exit 1; }
      sleep 0.3
    done
  fi
  log "applying the samples (manifests/samples)"
  kubectl apply -k "$ROOT/manifests/samples" >/dev/null
  log "waiting for the sample Agents to become Ready"
  kubectl -n agentfleet-demo wait --for=condition=Ready --timeout=120s statepolicy/chat-sessions \
    agent/hello agent/support-bot >/dev/null || log "not everything is Ready yet; see the conditions below"
  kubectl get agentfleet -n agentfleet-demo -o wide
  echo
  echo "Next: kubectl describe agt support-bot -n agentfleet-demo   (KUBECONFIG=$KUBECONFIG)"
  echo "Stop the operator with 'make dev-down', the cluster with 'make cluster-down'."
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
