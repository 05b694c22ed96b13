# agentfleet: the two commands of the README are `make dev` (local cluster + operator + samples)
# and `make test` (every test tier). Everything else here is a building block of those two.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig
# The project's own builds (prometheus, promtool: hack/build-prometheus.sh) before the machine's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help deps crds crds-check images cluster cluster-down dev dev-down test reliability-doc test-unit test-integration test-e2e lint bench kind-deploy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install Debian packages and the Python environment this project needs
	@hack/install-deps.sh

crds: deps ## regenerate crds/ from the API models
	@$(BIN)/agentfleet-crdgen --out crds

crds-check: deps ## fail when crds/ is stale
	@$(BIN)/agentfleet-crdgen --out crds --check

images: deps ## build the operator, runtime, Redis, Prometheus and pause images without Docker (cached)
	@hack/images.sh build

cluster: deps ## start (or reuse) the local cluster with its real node; writes .cluster/kubeconfig
	@hack/cluster.sh up

cluster-down: ## stop every process `make cluster` started
	@hack/cluster.sh down

dev: deps cluster ## the main job: local cluster, operator in-cluster, samples running for real
	@hack/dev.sh up

dev-down: ## stop the in-cluster operator `make dev` runs (the cluster and samples stay)
	@hack/dev.sh down

lint: deps ## ruff and the layer contracts
	@$(BIN)/ruff check .
	@$(BIN)/lint-imports

test: deps ## every test: lint, unit, integration and e2e tiers (starts the cluster, Redis, Prometheus itself)
	@$(MAKE) --no-print-directory lint
	@# The tests run their own operator; one left by `make dev` would reconcile their objects too.
	@hack/dev.sh down
	@$(BIN)/pytest tests -ra

reliability-doc: ## copy the last full run's reliability summary to docs/reliability.md (a green run only)
	@grep -q 'exit status 0\.' .artifacts/reliability.md 2>/dev/null || \
	  { echo "no green full run in .artifacts/reliability.md: run 'make test' first" >&2; exit 1; }
	@cp .artifacts/reliability.md docs/reliability.md && echo "docs/reliability.md updated; commit it"

test-unit: deps ## the fast tier only
	@$(BIN)/pytest tests/unit -q

test-integration: deps ## the tier on the local cluster, Redis and Prometheus
	@$(BIN)/pytest tests/integration -ra

test-e2e: deps ## the tier on the real node: pods of the project's images serving real traffic
	@hack/dev.sh down
	@$(BIN)/pytest tests/e2e -ra

bench: deps ## benchmarks on their own cluster (.bench-cluster, 12 nodes); results in bench/results/
	@export AGENTFLEET_CLUSTER_DIR=$(CURDIR)/.bench-cluster AGENTFLEET_CLUSTER_NODES=12; \
	  hack/cluster.sh up && $(BIN)/python -m bench.run $(BENCH_ARGS); status=$$?; \
	  hack/cluster.sh down; exit $$status

kind-deploy: ## for machines with Docker: kind cluster, both images, the manifests
	@hack/kind-deploy.sh
