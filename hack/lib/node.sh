# shellcheck shell=bash
# The real node of the local cluster, sourced by hack/cluster.sh: containerd and runc from Debian,
# the kubelet and kube-proxy built with the control plane, the CNI bridge plugin, CoreDNS as the
# cluster DNS, metrics-server for the HPA and kube-router's firewall enforcing NetworkPolicies, all
# as processes on this machine. kwok's fake nodes
# stay beside it (tainted) for the tests that need hundreds of pods.
#
# Addresses: the node is 10.250.0.1, an extra address on `lo` (the kubelet refuses a loopback node
# IP and this kernel has no dummy links). Pods get 10.244.200.0/24 on the bridge af-br0. Nothing a
# pod sends may leave the machine: pods have routes to the pod, Service and node addresses only
# (no default route), the CNI plugin does not masquerade, the host routes the whole pod and Service
# ranges onto the bridge (so a fake kwok pod IP or an unprogrammed ClusterIP never goes out through
# the machine's uplink), FORWARD drops anything from a pod to an address outside them, and CoreDNS
# answers cluster names only, without forwarding to any upstream resolver.
#
# Findings and what each setting is for: docs/local-cluster.md ("The real node").

NODE_NAME=agentfleet-node
NODE_IP=10.250.0.1
NODE_POD_CIDR=10.244.200.0/24
NODE_BRIDGE=af-br0
NODE_CHAIN=AGENTFLEET-ISOLATE
CLUSTER_DOMAIN=cluster.local
# The real node's components, in start order (stopped in reverse after the control plane's clients).
NODE_COMPONENTS=(containerd coredns kubelet kube-proxy kube-router metrics-server)

node_dir() { echo "$STATE/node"; }

# Binary of a component: the control plane's cache for the Kubernetes ones, the add-ons' cache for
# CoreDNS and metrics-server, Debian's containerd.
component_binary() {
  case "$1" in
    containerd) echo /usr/bin/containerd ;;
    coredns | metrics-server) echo "${ADDONS_DIR:?}/$1" ;;
    kube-router) echo "${NETPOL_DIR:?}/$1" ;;
    *) echo "${BIN_DIR:?}/$1" ;;
  esac
}

node_need() {
  local tool
  for tool in containerd runc ctr ip iptables ipset buildah debootstrap conntrack; do
    command -v "$tool" >/dev/null ||
      die "$tool is required for the real node (hack/install-deps.sh installs it; AGENTFLEET_REAL_NODE=0 runs without)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap && -x /usr/lib/cni/loopback ]] ||
    die "the CNI plugins are required (Debian's containernetworking-plugins)"
  [[ $(id -u) -eq 0 ]] || die "the real node needs root (containers, network namespaces, iptables)"
}

# --- network ---------------------------------------------------------------------------------

node_network_up() {
  ip addr replace "$NODE_IP/32" dev lo
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip link set "$NODE_BRIDGE" up
  # Pod and Service ranges stay on the bridge (see the header); the CNI plugin adds the node's
  # own /24 when it gives the bridge its gateway address.
  ip route replace "$POD_CIDR" dev "$NODE_BRIDGE"
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE"
  # Reply traffic of pod -> ClusterIP -> pod on the same bridge is bridged, not routed: it must
  # pass iptables for kube-proxy's DNAT to be undone. Forwarding is for pod -> ClusterIP.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  iptables -N "$NODE_CHAIN" 2>/dev/null || iptables -F "$NODE_CHAIN"
  iptables -A "$NODE_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -A "$NODE_CHAIN" -s "$POD_CIDR" -j DROP
  iptables -C FORWARD -j "$NODE_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$NODE_CHAIN"
}

node_network_down() {
  # kube-proxy removes its own chains; the kubelet's (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...)
  # are removed here. Only chains we know are touched.
  if [[ -x "${BIN_DIR:-}/kube-proxy" ]]; then
    "$BIN_DIR/kube-proxy" --cleanup --proxy-mode=iptables >/dev/null 2>&1 || true
  fi
  # kube-router's chains (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) go with the KUBE- chains
  # below; its ipsets after them, once no rule refers to them any more.
  local table chain rule
  for table in filter nat mangle; do
    # Jumps from the built-in chains first, then the KUBE-* chains themselves (flush all before
    # deleting any, since they jump to each other).
    while read -r rule; do
      eval "iptables -t $table ${rule/#-A/-D}" 2>/dev/null || true
    done < <(iptables -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-')
    for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[A-Z0-9-]*\)$/\1/p'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[A-Z0-9-]*\)$/\1/p'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  local set
  for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-(SRC|DST)-|kube-router-)'); do
    ipset destroy "$set" 2>/dev/null || true
  done
  while iptables -D FORWARD -j "$NODE_CHAIN" 2>/dev/null; do :; done
  iptables -F "$NODE_CHAIN" 2>/dev/null || true
  iptables -X "$NODE_CHAIN" 2>/dev/null || true
  ip route del "$POD_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
}

# --- configuration ---------------------------------------------------------------------------

node_pki() {
  local pki="$STATE/pki" client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  local serving="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth"
  # The Node authorizer and NodeRestriction confine this identity to its own node and its pods.
  new_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  new_cert kubelet-serving "/CN=$NODE_NAME" "$serving\nsubjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
  # RBAC ships system:node-proxier bound to the user system:kube-proxy.
  new_cert kube-proxy "/CN=system:kube-proxy" "$client"
  # The API server's identity towards kubelets (logs, exec, port-forward): bound to
  # system:kubelet-api-admin below, not a superuser.
  new_cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "$client"
  # The aggregation layer's client towards metrics-server; metrics-server trusts it by CA and name.
  new_cert front-proxy-client "/CN=front-proxy-client" "$client"
  new_cert coredns "/CN=system:coredns" "$client"
  new_cert metrics-server "/CN=system:metrics-server" "$client"
  new_cert kube-router "/CN=system:kube-router" "$client"
  new_cert metrics-server-serving "/CN=metrics-server" "$serving\nsubjectAltName=IP:$NODE_IP,DNS:metrics-server.kube-system.svc"
  chmod 600 "$pki"/*.key
  local c
  for c in kubelet kube-proxy coredns metrics-server kube-router; do
    write_kubeconfig "$STATE/kubeconfigs/$c.kubeconfig" "$c"
  done
}

node_write_config() {
  local dir
  dir=$(node_dir)
  mkdir -p "$dir"/{containerd,containerd-state,cni/net.d,cni/ipam,kubelet,pod-logs,coredns}
  # Unix socket paths are limited to 107 bytes; a deep checkout would exceed it under $STATE.
  NODE_RUN=/run/agentfleet-$(printf '%s' "$STATE" | sha256sum | cut -c1-10)
  mkdir -p "$NODE_RUN"
  CONTAINERD_SOCK="$NODE_RUN/containerd.sock"

  cat >"$dir/containerd/config.toml" <<EOF
# Written by hack/cluster.sh for the local real node (see hack/lib/node.sh).
version = 2
root = "$dir/containerd-root"
state = "$dir/containerd-state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  # Nothing can be pulled here: the pod sandbox runs the pause image built by hack/images.sh.
  sandbox_image = "$PAUSE_IMAGE"
  # Root lacks CAP_SYS_RESOURCE here, so no container may get a lower oom_score_adj than its
  # parent's; without this the pause container fails to start.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state folder, not /run/netns: `down` finds exactly ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/containerd/certs.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd-opt"
EOF
  # Nothing may be pulled from outside this machine: every registry host (the `_default`
  # namespace) resolves to a closed local port, so an image that was not imported fails at once
  # with ErrImagePull instead of reaching for the network.
  mkdir -p "$dir/containerd/certs.d/_default"
  cat >"$dir/containerd/certs.d/_default/hosts.toml" <<EOF
server = "http://127.0.0.1:9"
[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
EOF

  cat >"$dir/cni/net.d/10-agentfleet.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "agentfleet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "$POD_CIDR"}, {"dst": "$SERVICE_CIDR"}, {"dst": "$NODE_IP/32"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Pods resolve through CoreDNS only; an empty host resolv.conf keeps the machine's search
  # domains and resolvers out of them.
  : >"$dir/resolv.conf"
  cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $STATE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $STATE/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
  webhook: {enabled: true}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
# This machine has cgroup v1 controllers (hybrid) and no swap accounting to speak of.
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $dir/resolv.conf
podLogsDir: $dir/pod-logs
serializeImagePulls: false
# Images cannot be pulled again once collected: keep them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
EOF

  cat >"$dir/coredns/Corefile" <<EOF
# Cluster names only: anything else is answered NXDOMAIN here, never forwarded off the machine.
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kubeconfigs/coredns.kubeconfig agentfleet-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
.:53 {
    bind $NODE_IP
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
}

# RBAC and registrations the node's components need; applied once the API server is up.
node_manifests_rbac() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agentfleet:apiserver-kubelet-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agentfleet:coredns}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agentfleet:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agentfleet:coredns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:coredns}]
---
# kube-router's firewall reads pods, namespaces, policies and its node; nothing more is granted.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agentfleet:kube-router}
rules:
- {apiGroups: [""], resources: [namespaces, pods, services, endpoints, nodes], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [events], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agentfleet:kube-router}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agentfleet:kube-router}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-router}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agentfleet:metrics-server}
rules:
- {apiGroups: [""], resources: [nodes/metrics], verbs: [get]}
- {apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agentfleet:metrics-server}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agentfleet:metrics-server}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: agentfleet:metrics-server:auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: agentfleet:metrics-server:auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
# metrics-server runs on the node as a process; the aggregation layer reaches it through this
# selector-less Service whose one endpoint is the node address (the EndpointSlice mirroring
# controller turns these Endpoints into the slice kube-proxy reads).
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  ports: [{name: https, port: 443, targetPort: $METRICS_SERVER_PORT, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system}
subsets: [{addresses: [{ip: "$NODE_IP"}], ports: [{name: https, port: $METRICS_SERVER_PORT, protocol: TCP}]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(b64 "$STATE/pki/ca.crt")
EOF
}

# --- start -----------------------------------------------------------------------------------

node_start() {
  local dir
  dir=$(node_dir)
  start containerd --config "$dir/containerd/config.toml"
  wait_until "containerd serving" ctr -a "$CONTAINERD_SOCK" version
  "$HACK_DIR/images.sh" import "$CONTAINERD_SOCK"
  log "images imported ($(elapsed_since "$STARTED_AT")s)"

  node_manifests_rbac | k apply -f - >/dev/null
  start coredns -conf "$dir/coredns/Corefile" -dns.port 53
  start kubelet --config="$dir/kubelet/config.yaml" --kubeconfig="$STATE/kubeconfigs/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$dir/kubelet" \
    --cert-dir="$dir/kubelet/pki" --node-labels=type=real --v=1
  start kube-proxy --kubeconfig="$STATE/kubeconfigs/kube-proxy.kubeconfig" --proxy-mode=iptables \
    --cluster-cidr="$POD_CIDR" --hostname-override="$NODE_NAME" --bind-address="$NODE_IP" \
    --nodeport-addresses="$NODE_IP/32" --conntrack-max-per-core=0 \
    --healthz-bind-address="127.0.0.1:$PROXY_HEALTHZ_PORT" --metrics-bind-address="127.0.0.1:$PROXY_METRICS_PORT"
  # NetworkPolicies are enforced by kube-router's firewall alone (routing and Service proxying stay
  # with the bridge and kube-proxy). It needs the node object, so it starts after the kubelet.
  wait_until "node $NODE_NAME registered" k get node "$NODE_NAME"
  start kube-router --kubeconfig="$STATE/kubeconfigs/kube-router.kubeconfig" --hostname-override="$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --service-cluster-ip-range="$SERVICE_CIDR" --health-port="$NETPOL_HEALTH_PORT" --metrics-port=0 \
    --iptables-sync-period=1m --v=1
  # Only the real node is scraped: kwok's nodes have no kubelet to ask.
  start metrics-server --kubeconfig="$STATE/kubeconfigs/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$STATE/kubeconfigs/metrics-server.kubeconfig" \
    --authorization-kubeconfig="$STATE/kubeconfigs/metrics-server.kubeconfig" \
    --bind-address="$NODE_IP" --secure-port="$METRICS_SERVER_PORT" \
    --tls-cert-file="$STATE/pki/metrics-server-serving.crt" --tls-private-key-file="$STATE/pki/metrics-server-serving.key" \
    --requestheader-client-ca-file="$STATE/pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --kubelet-certificate-authority="$STATE/pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --kubelet-use-node-status-port --node-selector=type=real --metric-resolution=15s
  wait_until "node $NODE_NAME Ready" node_ready
  wait_until "kube-router enforcing NetworkPolicies" curl -fsS "http://127.0.0.1:$NETPOL_HEALTH_PORT/healthz"
}

node_ready() {
  [[ $(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# --- stop ------------------------------------------------------------------------------------

# Pods on the real node are drained while the kubelet still runs, so it tears each sandbox down
# itself (CNI DEL, unmounts, cgroups). The controllers are already stopped, so nothing comes back.
node_drain() {
  live_pid kubelet >/dev/null || return 0
  live_pid kube-apiserver >/dev/null || return 0
  log "draining the real node"
  k delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    [[ -z $(k get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null) ]] && break
    sleep 0.5
  done
  # Sandboxes linger a moment after their pods are gone from the API.
  deadline=$((SECONDS + 15))
  while ((SECONDS < deadline)) && [[ -n $(node_tasks) ]]; do sleep 0.5; done
}

node_tasks() {
  [[ -S ${CONTAINERD_SOCK:-/nonexistent} ]] || return 0
  ctr -a "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null || true
}

# After the processes are gone: whatever a crash or a stuck drain left behind.
node_cleanup() {
  local dir task m ns
  dir=$(node_dir)
  NODE_RUN=/run/agentfleet-$(printf '%s' "$STATE" | sha256sum | cut -c1-10)
  CONTAINERD_SOCK="$NODE_RUN/containerd.sock"
  # Shims outlive containerd: kill what still runs in our containerd's state folder.
  if [[ -d "$dir/containerd-state" ]]; then
    for task in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do
      pkill -KILL -P "$task" 2>/dev/null || true
      kill -KILL "$task" 2>/dev/null || true
    done
    # The containers' own processes, found by their cgroup under the kubelet's kubepods.
    for task in $(grep -l kubepods /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
      kill -KILL "$task" 2>/dev/null || true
    done
  fi
  # The sandboxes' network namespaces live under containerd's state folder; they are unmounted
  # with the other mounts below.
  # Mounts under the node's state folder, deepest first (volumes, rootfs, the kubelet's own bind).
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  awk -v d="$NODE_RUN" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
  node_network_down
  rm -rf "$dir" "$NODE_RUN"
  node_remove_cgroups
}

# The kubelet's kubepods hierarchy in each cgroup v1 controller (and cgroup2), leaves first.
node_remove_cgroups() {
  local root
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $root ]] || continue
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
