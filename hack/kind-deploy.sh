#!/usr/bin/env bash
# For machines with Docker: a kind cluster with agentfleet installed from this checkout.
#   make kind-deploy                      # cluster "agentfleet", images tagged :dev
#   KIND_CLUSTER=x TAG=y make kind-deploy
# Then `KUBECONFIG=$(kind get kubeconfig-path) make test-integration` runs the same suite there
# (the integration tests use whatever cluster KUBECONFIG names).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER=${KIND_CLUSTER:-agentfleet}
TAG=${TAG:-dev}
OPERATOR_IMAGE=ghcr.io/agentfleet/agentfleet-operator:$TAG
RUNTIME_IMAGE=ghcr.io/agentfleet/agentfleet-runtime:$TAG

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-deploy needs $tool on PATH" >&2; exit 1; }
done

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
docker build --target operator -t "$OPERATOR_IMAGE" "$ROOT"
docker build --target runtime -t "$RUNTIME_IMAGE" "$ROOT"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$RUNTIME_IMAGE"

overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
cp -r "$ROOT/manifests" "$ROOT/crds" "$overlay/"
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [manifests/base]
images:
  - {name: ghcr.io/agentfleet/agentfleet-operator, newTag: "$TAG"}
patches:
  - target: {kind: Deployment, name: agentfleet-operator}
    patch: |
      - {op: replace, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--runtime-image=$RUNTIME_IMAGE"}
YAML
kubectl --context "kind-$CLUSTER" apply --server-side -k "$overlay"
kubectl --context "kind-$CLUSTER" -n agentfleet-system rollout status deployment/agentfleet-operator --timeout=180s
echo "agentfleet runs in kind cluster $CLUSTER; try: kubectl --context kind-$CLUSTER apply -k manifests/samples"
