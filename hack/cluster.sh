#!/usr/bin/env bash
# Start and stop a real, local Kubernetes cluster for `make dev` and the tests:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok (fake kubelets),
# compiled by hack/build-controlplane.sh and run as plain processes, and on the default cluster
# a real node beside the fake ones (containerd, kubelet, kube-proxy, CoreDNS, metrics-server;
# hack/lib/node.sh) that runs the project's own images (hack/images.sh).
#
#   hack/cluster.sh up      start it (or reuse the one already running) and wait until it is usable
#   hack/cluster.sh down    stop exactly the processes `up` started and remove the state
#   hack/cluster.sh status  say whether it runs (exit 0) or not (exit 1)
#   hack/cluster.sh env     print `export KUBECONFIG=...`
#   hack/cluster.sh restart COMPONENT   stop one component and start it again with the same command line
#                                       (fault-injection tests); etcd keeps its data, the PID file is updated
#
# Why by hand and not `kwokctl create cluster`: kwokctl binds every component to 0.0.0.0, adds a
# context to ~/.kube/config, cannot pass --unsafe-no-fsync to etcd, and hides the processes behind
# its own bookkeeping. Five processes are few enough to start directly, and doing so lets `down`
# stop precisely the PIDs recorded here. Findings and timings: docs/local-cluster.md.
#
# State lives in <repo>/.cluster/ (gitignored): cluster.env (ports, binaries), kubeconfig (admin),
# pki/, etcd/, pids/<component>.pid, logs/<component>.log. Every `up` that has to start processes
# starts from an empty etcd; a running, healthy cluster is reused as is.
#
# Tunables (environment): AGENTFLEET_CLUSTER_NODES (2 fake nodes), AGENTFLEET_CLUSTER_TIMEOUT
# (seconds to become healthy, 300), AGENTFLEET_CLUSTER_STOP_GRACE (seconds between TERM and KILL,
# 10), AGENTFLEET_REAL_NODE (1 for the default .cluster/, 0 for the others: one machine has room
# for one real node, and the benchmark's and fault tests' clusters need none), KUBECTL (kubectl).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HACK_DIR/.." && pwd)
# AGENTFLEET_CLUSTER_DIR runs a second, independent cluster (the benchmarks use their own).
STATE="${AGENTFLEET_CLUSTER_DIR:-$ROOT/.cluster}"
ADMIN_KUBECONFIG="$STATE/kubeconfig"
STAGES="$HACK_DIR/kwok/stages.yaml"
KUBECTL=${KUBECTL:-kubectl}
NODES=${AGENTFLEET_CLUSTER_NODES:-2}
TIMEOUT=${AGENTFLEET_CLUSTER_TIMEOUT:-300}
STOP_GRACE=${AGENTFLEET_CLUSTER_STOP_GRACE:-10}
if [[ -z ${AGENTFLEET_REAL_NODE:-} ]]; then
  REAL_NODE=0
  [[ $STATE == "$ROOT/.cluster" ]] && REAL_NODE=1
else
  REAL_NODE=$AGENTFLEET_REAL_NODE
fi
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/16
# shellcheck source=hack/lib/node.sh
source "$HACK_DIR/lib/node.sh"

# Start order; `down` stops them in reverse so clients go before the servers they talk to.
set_components() {
  COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
  ((REAL_NODE)) && COMPONENTS+=("${NODE_COMPONENTS[@]}")
  # Where clients reach the API server: the node address when pods must reach it too.
  API_HOST=127.0.0.1
  ((REAL_NODE)) && API_HOST=$NODE_IP
  return 0
}
set_components

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "${EPOCHREALTIME:-$SECONDS}"; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- recorded state --------------------------------------------------------------------------

load_env() {
  [[ -f "$STATE/cluster.env" ]] || return 1
  # shellcheck source=/dev/null  # written by write_env below, values are %q-quoted
  source "$STATE/cluster.env"
  set_components
}

write_env() {
  local var
  {
    echo "# written by hack/cluster.sh; read by its status/down and by humans"
    for var in BIN_DIR ADDONS_DIR NETPOL_DIR REAL_NODE ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT \
      KWOK_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT METRICS_SERVER_PORT \
      NETPOL_HEALTH_PORT CONTAINERD_SOCK STARTED_AT STARTUP_SECONDS; do
      printf '%s=%q\n' "$var" "${!var-}"
    done
  } >"$STATE/cluster.env"
}

# Prints the PID recorded for a component if that process still runs the binary we started.
# Checking argv[0] (not just `kill -0`) keeps `down` from signalling an unrelated process that
# reused the PID after the original died, e.g. across a reboot.
live_pid() {
  local name=$1 pidfile="$STATE/pids/$1.pid" pid argv0
  [[ -s "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" || true
    [[ "$argv0" == "$(component_binary "$name")" ]] || return 1
  fi
  echo "$pid"
}

curl_apiserver() {
  curl -fsS --max-time 5 --cacert "$STATE/pki/ca.crt" \
    --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://${API_HOST}:${APISERVER_PORT}$1"
}

k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }

# Healthy = every recorded process alive and the API server ready. Cheap enough for each `up`.
healthy() {
  load_env || return 1
  [[ -f "$ADMIN_KUBECONFIG" ]] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do live_pid "$c" >/dev/null || return 1; done
  curl_apiserver /readyz >/dev/null 2>&1
}

# --- down ------------------------------------------------------------------------------------

# stop_one NAME: TERM, then KILL after the grace period.
stop_one() {
  local pid deadline
  pid=$(live_pid "$1") || return 0
  log "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_GRACE))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
  load_env || true
  local i c pid pids=() deadline
  if ((REAL_NODE)); then
    # No controller may recreate what the drain deletes.
    stop_one kube-controller-manager
    stop_one kube-scheduler
    node_drain
  fi
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if pid=$(live_pid "$c"); then
      log "stopping $c (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    elif [[ -s "$STATE/pids/$c.pid" ]]; then
      log "$c (pid $(<"$STATE/pids/$c.pid")) is not running any more"
    fi
  done
  deadline=$((SECONDS + STOP_GRACE))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored TERM for ${STOP_GRACE}s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Keep the last run's logs for post-mortems; everything else is stale once the processes are gone.
  if [[ -d "$STATE/logs" ]]; then
    rm -rf "$STATE/logs.previous"
    mv "$STATE/logs" "$STATE/logs.previous"
  fi
  # Also after a crash: a previous real node's leftovers (shims, netns, mounts, iptables chains).
  if ((REAL_NODE)) || [[ -d "$STATE/node" ]]; then node_cleanup; fi
  rm -rf "$STATE/pids" "$STATE/pki" "$STATE/etcd" "$STATE/kubeconfigs" "$STATE/apiserver-certs" \
    "$STATE/cluster.env" "$ADMIN_KUBECONFIG"
}

# --- up --------------------------------------------------------------------------------------

# Ports below Linux's ephemeral range (32768+) so that no outgoing connection can grab one between
# this check and the component binding it; each is checked by binding it on 127.0.0.1.
pick_free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys

wanted, chosen = int(sys.argv[1]), []
while len(chosen) < wanted:
    port = random.randint(20000, 32000)
    if port in chosen:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    chosen.append(port)
print(*chosen)
PY
}

# new_cert NAME SUBJECT EXTENSIONS: an EC P-256 key and a certificate signed by the local CA.
new_cert() {
  local name=$1 subject=$2 ext=$3 pki="$STATE/pki"
  printf '%b\n' "$ext" >"$pki/$name.ext"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -config /dev/null \
    -subj "$subject" -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -CAserial "$pki/ca.srl" -days 3650 -extfile "$pki/$name.ext" \
    -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() {
  local pki="$STATE/pki" client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  mkdir -p "$pki"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -config /dev/null \
    -subj "/CN=agentfleet-local-ca" -days 3650 -keyout "$pki/ca.key" -out "$pki/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  # The serving cert also names the in-cluster Service (first IP of SERVICE_CIDR) so a client
  # that follows the `kubernetes` Service would verify too.
  new_cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:$NODE_IP,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # system:masters is the superuser group; RBAC ships bindings for the two component identities.
  new_cert admin "/O=system:masters/CN=agentfleet-admin" "$client"
  new_cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  new_cert kube-scheduler "/CN=system:kube-scheduler" "$client"
  # kwok stands in for every kubelet (node status, leases, pod status, pod deletion); the Node
  # authorizer would confine a real kubelet to its own node, so it gets the superuser group.
  new_cert kwok "/O=system:masters/CN=kwok-controller" "$client"
  # Kubelet-serving style cert for kwok's own HTTPS endpoint (healthz, metrics).
  new_cert kwok-serving "/CN=kwok-serving" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
  # ServiceAccount token signing key: the API server signs (TokenRequest) and verifies with it,
  # the controller manager uses it for legacy token Secrets.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

b64() { base64 <"$1" | tr -d '\n'; }

# write_kubeconfig PATH CERT_NAME: credentials are embedded so the file can be copied elsewhere.
write_kubeconfig() {
  local path=$1 cert=$2 pki="$STATE/pki"
  cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: agentfleet-local
  cluster:
    server: https://${API_HOST}:${APISERVER_PORT}
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: ${cert}
  user:
    client-certificate-data: $(b64 "$pki/$cert.crt")
    client-key-data: $(b64 "$pki/$cert.key")
contexts:
- name: agentfleet-local
  context:
    cluster: agentfleet-local
    user: ${cert}
current-context: agentfleet-local
EOF
  chmod 600 "$path"
}

# start NAME ARGS...: run $BIN_DIR/NAME in the background with its own session (setsid) so that
# a Ctrl-C aimed at whoever ran `up` (a terminal, pytest) does not reach a cluster meant to
# outlive it. The child writes its own PID before exec'ing, so the PID is the component's even
# if setsid had to fork. stdio goes to the log and fd 9 (the state lock) is closed, or a
# long-lived component would hold the lock, and a caller's output pipe, forever.
start() {
  local name=$1 pidfile="$STATE/pids/$1.pid" i
  shift
  # shellcheck disable=SC2016  # $$ and $@ are meant for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$(component_binary "$name")" "$@" \
    </dev/null >>"$STATE/logs/$name.log" 2>&1 9>&- &
  # Wait for the exec, so that later liveness checks (which compare argv[0]) see the component.
  for ((i = 0; i < 200; i++)); do
    live_pid "$name" >/dev/null && return 0
    sleep 0.05
  done
  show_log "$name"
  die "$name did not start"
}

# wait_until DESCRIPTION COMMAND...: poll until COMMAND succeeds, failing fast with the log
# tail of any component that died, or at the deadline.
wait_until() {
  local what=$1 c
  shift
  until "$@" >/dev/null 2>&1; do
    for c in "${COMPONENTS[@]}"; do
      if [[ -s "$STATE/pids/$c.pid" ]] && ! live_pid "$c" >/dev/null; then
        show_log "$c"
        die "$c exited while waiting for: $what"
      fi
    done
    ((SECONDS < DEADLINE)) || { show_logs; die "timed out after ${TIMEOUT}s waiting for: $what"; }
    sleep 0.25
  done
  log "$what ($(elapsed_since "$STARTED_AT")s)"
}

show_log() {
  [[ -f "$STATE/logs/$1.log" ]] || return 0
  log "--- last lines of .cluster/logs/$1.log"
  tail -n 25 "$STATE/logs/$1.log" >&2
}
show_logs() { local c; for c in "${COMPONENTS[@]}"; do show_log "$c"; done; }

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:${ETCD_PORT}/health" | grep -q '"health":"true"'; }
apiserver_ready() { curl_apiserver /readyz; }

# Every fake node Ready and without the not-ready taint: the TaintNodesByCondition admission
# plugin creates nodes with node.kubernetes.io/not-ready:NoSchedule and the controller manager
# lifts it only after kwok has reported Ready, so this also proves the node lifecycle controller
# runs. (Beside a real node the fake ones carry our own kwok taint, which stays.)
nodes_schedulable() {
  local out
  out=$(k get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}/{.spec.taints[*].key}{"\n"}{end}')
  [[ $(grep -Ec '^True/(kwok.x-k8s.io/node)?$' <<<"$out") -ge "$NODES" ]]
}

# Beside a real node, pods land on the fake nodes only if they tolerate this (the tests with
# hundreds of Agents do, through their namespace's default tolerations or spec.podTemplate).
kwok_taint() {
  ((REAL_NODE)) || return 0
  printf '  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]\n'
}

default_serviceaccount() { k -n default get serviceaccount default; }

node_manifests() {
  local i
  for ((i = 0; i < NODES; i++)); do
    # Shaped like kwokctl's node template (kwok v0.8.0 kustomize/kwokctl/resource/node.yaml).
    # Node status may be set on create; kwok keeps the capacity given here.
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    node-role.kubernetes.io/agent: ""
spec:
  podCIDR: 10.244.$i.0/24
  podCIDRs: [10.244.$i.0/24]
$(kwok_taint)
status:
  addresses:
  # Loopback: whoever dials a fake node (the API server for logs, a scraper) stays on this machine.
  - {type: InternalIP, address: 127.0.1.$((i + 1))}
  - {type: Hostname, address: kwok-node-$i}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo: {architecture: amd64, operatingSystem: linux}
EOF
  done
}

cold_start() {
  STARTED_AT=$(now)
  DEADLINE=$((SECONDS + TIMEOUT))
  mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/kubeconfigs"
  mkdir -m 700 "$STATE/etcd" # etcd warns about anything wider
  read -r ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT KWOK_PORT \
    KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT METRICS_SERVER_PORT \
    NETPOL_HEALTH_PORT <<<"$(pick_free_ports 12)"
  STARTUP_SECONDS=""
  if ((REAL_NODE)); then
    node_need
    # The images are built (or found cached) before anything starts: a cold build takes minutes.
    "$HACK_DIR/images.sh" build
    eval "$("$HACK_DIR/images.sh" tags)"
    # The node address must exist before the API server binds it.
    node_network_up
    node_write_config
  fi
  write_env
  log "ports: apiserver $APISERVER_PORT, etcd $ETCD_PORT/$ETCD_PEER_PORT, controller-manager $KCM_PORT, scheduler $SCHEDULER_PORT, kwok $KWOK_PORT"

  # If anything below fails, do not leave half a cluster running.
  trap 'status=$?; if ((status != 0)); then log "start failed; stopping what was started (logs kept in .cluster/logs.previous)"; stop_all; fi' EXIT

  make_pki
  write_kubeconfig "$ADMIN_KUBECONFIG" admin
  local c
  for c in kube-controller-manager kube-scheduler kwok; do
    write_kubeconfig "$STATE/kubeconfigs/$c.kubeconfig" "$c"
  done
  ((REAL_NODE)) && node_pki
  local pki="$STATE/pki" kc="$STATE/kubeconfigs"

  # Throwaway data: fsync buys nothing for a test cluster and costs seconds per test run.
  start etcd --name=agentfleet --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="agentfleet=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true --auto-compaction-retention=1 --log-level=warn
  wait_until "etcd healthy" etcd_healthy

  # Admission is the upstream defaults (NamespaceLifecycle, ServiceAccount, ...) plus three real
  # plugins: NodeRestriction confines the real kubelet to its own node; PodNodeSelector and
  # PodTolerationRestriction let a namespace's annotations send its pods to the fake nodes (the
  # many-Agent tests). Never pass --disable-admission-plugins here, tests rely on the real chain.
  local where=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)
  if ((REAL_NODE)); then
    # Pods (the operator in-cluster, Prometheus) reach the API server through the `kubernetes`
    # Service, which publishes the advertise address; logs, exec and port-forward go to the
    # kubelet by its InternalIP with a client certificate the kubelet's webhook authorizes; the
    # aggregation layer proxies metrics.k8s.io to metrics-server with the front-proxy identity.
    where=(--bind-address="$NODE_IP" --advertise-address="$NODE_IP"
      --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP
      --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key"
      --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client
      --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
      --requestheader-extra-headers-prefix=X-Remote-Extra- --enable-aggregator-routing=true)
  else
    # --endpoint-reconciler-type=none: the API server would publish its loopback advertise
    # address in the `kubernetes` Endpoints, which validation refuses (an error every 10s); no
    # pod runs here that would dial that Service.
    :
  fi
  start kube-apiserver "${where[@]}" \
    --enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction \
    --secure-port="$APISERVER_PORT" --cert-dir="$STATE/apiserver-certs" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true
  wait_until "kube-apiserver ready" apiserver_ready

  # --use-service-account-credentials: each controller acts as its own ServiceAccount with the
  # RBAC upstream ships, as on a real cluster. It is required, not a nicety: the identity
  # system:kube-controller-manager alone may not, e.g., lift node taints or aggregate ClusterRoles
  # (tried: nodes never become schedulable). It costs ~3s of start-up (one TokenRequest per
  # controller). The node-monitor grace period is generous because
  # on two busy cores kwok's lease renewals can lag; a node flapping NotReady would taint it and
  # evict test pods.
  start kube-controller-manager --kubeconfig="$kc/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --node-monitor-grace-period=2m
  start kube-scheduler --kubeconfig="$kc/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false
  # Without --node-lease-duration-seconds kwok keeps no node leases and nodes go NotReady. kwok
  # plays only the nodes annotated as fake (all of ours): with --manage-all-nodes it would also
  # mark the real node's pods Running with made-up addresses.
  start kwok --kubeconfig="$kc/kwok.kubeconfig" --config="$STAGES" \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr="$POD_CIDR" \
    --server-address="127.0.0.1:$KWOK_PORT" \
    --tls-cert-file="$pki/kwok-serving.crt" --tls-private-key-file="$pki/kwok-serving.key"

  node_manifests | k apply -f - >/dev/null
  wait_until "$NODES fake nodes Ready and untainted" nodes_schedulable
  wait_until "ServiceAccount default/default exists" default_serviceaccount
  ((REAL_NODE)) && node_start

  STARTUP_SECONDS=$(elapsed_since "$STARTED_AT")
  write_env
  trap - EXIT
  log "cluster up in ${STARTUP_SECONDS}s: export KUBECONFIG=$ADMIN_KUBECONFIG"
}

need() { command -v "$1" >/dev/null || die "$1 is required ($2)"; }

cmd_up() {
  need openssl "PKI"
  need curl "health checks"
  need python3 "free-port selection"
  need setsid "detaching the components"
  need "$KUBECTL" "creating the fake nodes"
  # Returns at once when the binaries are cached; compiles them otherwise (see that script).
  "$HACK_DIR/build-controlplane.sh"
  local bin_dir addons_dir netpol_dir want_real_node=$REAL_NODE
  bin_dir=$("$HACK_DIR/build-controlplane.sh" --print-bin-dir)
  addons_dir=$("$HACK_DIR/build-controlplane.sh" --print-addons-dir)
  netpol_dir=$("$HACK_DIR/build-controlplane.sh" --print-netpol-dir)
  with_lock
  if healthy && [[ "$BIN_DIR" == "$bin_dir" && "${NETPOL_DIR:-}" == "$netpol_dir" && "$REAL_NODE" == "$want_real_node" ]]; then
    log "reusing the running cluster (apiserver https://$API_HOST:$APISERVER_PORT): export KUBECONFIG=$ADMIN_KUBECONFIG"
    return 0
  fi
  if [[ -d "$STATE/pids" || -f "$STATE/cluster.env" ]]; then
    log "the recorded cluster is not healthy or runs other binaries; replacing it"
  fi
  # Always: it also clears leftovers of a run whose processes died. It reloads the recorded
  # cluster.env, so the new cluster's settings are assigned only after it.
  stop_all
  BIN_DIR=$bin_dir ADDONS_DIR=$addons_dir NETPOL_DIR=$netpol_dir REAL_NODE=$want_real_node
  set_components
  cold_start
}

cmd_down() {
  with_lock
  if [[ ! -d "$STATE/pids" && ! -f "$STATE/cluster.env" ]]; then
    log "no cluster recorded in .cluster/"
    return 0
  fi
  stop_all
  log "stopped"
}

cmd_status() {
  if healthy; then
    local c line=""
    for c in "${COMPONENTS[@]}"; do line+=" $c=$(live_pid "$c")"; done
    echo "running: apiserver https://$API_HOST:$APISERVER_PORT, started in ${STARTUP_SECONDS:-?}s, pids:$line"
    echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
    return 0
  fi
  if load_env; then
    local c state
    for c in "${COMPONENTS[@]}"; do
      state=dead
      live_pid "$c" >/dev/null && state=alive
      echo "  $c: $state"
    done
    echo "not running (recorded in .cluster/ but unhealthy; \`hack/cluster.sh up\` restarts it)"
  else
    echo "not running"
  fi
  return 1
}

# True once every thread of PID is gone or a zombie, i.e. its sockets are closed and its ports free again.
# Neither kill -0 (true for an unreaped zombie) nor an empty cmdline (cleared before the files are) says that.
exited() {
  local task line state
  for task in /proc/"$1"/task/*/stat; do
    IFS= read -r line <"$task" 2>/dev/null || continue
    state=${line##*) }
    [[ "${state%% *}" == Z ]] || return 1
  done
  return 0
}

# The command line comes from /proc/<pid>/cmdline, so the component comes back exactly as `up` started it
# (same ports, same data dir, same log file, appended to); `start` records the new PID for `down`.
cmd_restart() {
  local name=${1:-} pid args=() deadline
  [[ " ${COMPONENTS[*]} " == *" $name "* ]] || die "usage: $0 restart COMPONENT (one of: ${COMPONENTS[*]})"
  with_lock
  load_env || die "no cluster recorded in $STATE"
  pid=$(live_pid "$name") || die "$name is not running"
  mapfile -d '' -t args <"/proc/$pid/cmdline"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_GRACE))
  while ! exited "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if ! exited "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    while ! exited "$pid"; do sleep 0.1; done
  fi
  STARTED_AT=$(now)
  DEADLINE=$((SECONDS + TIMEOUT))
  start "$name" "${args[@]:1}"
  case "$name" in
    etcd) wait_until "etcd healthy" etcd_healthy ;;
    kube-apiserver) wait_until "kube-apiserver ready" apiserver_ready ;;
  esac
  log "restarted $name (pid $(live_pid "$name"))"
}

# Serialise up/down (parallel pytest workers may all call `up`): the second caller waits and then
# finds the cluster healthy. flock is util-linux; without it, no locking.
with_lock() {
  mkdir -p "$STATE"
  command -v flock >/dev/null || return 0
  exec 9>"$STATE/.lock"
  flock -w "$((TIMEOUT + 60))" 9 || die "another hack/cluster.sh holds .cluster/.lock"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) cmd_restart "${2:-}" ;;
  env) echo "export KUBECONFIG=$ADMIN_KUBECONFIG" ;;
  *)
    echo "usage: $0 up|down|status|env|restart COMPONENT" >&2
    exit 2
    ;;
esac
