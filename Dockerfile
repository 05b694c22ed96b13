# syntax=docker/dockerfile:1
# Two images from one project:
#   docker build --target operator -t ghcr.io/agentfleet/agentfleet-operator:0.1.0 .
#   docker build --target runtime  -t ghcr.io/agentfleet/agentfleet-runtime:0.1.0 .
# Each final stage holds only a virtualenv copied from a build stage: no compiler, no pip, no
# caches, no source tree. Both run as the numeric non-root user 65532 (the Kubernetes manifests
# set runAsNonRoot, which needs a numeric USER to verify), and define no HEALTHCHECK: Kubernetes
# probes (/healthz, /readyz) are the health checks.

# Pin by digest in release builds: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build the project's wheel once ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Only what the wheel is built from: pyproject.toml reads README.md as the long description.
# contract/ is the package both programs import (runtime config file, log format), so the one
# wheel carries it into both images.
COPY pyproject.toml README.md ./
COPY contract/ contract/
COPY operator/ operator/
COPY agent-runtime/ agent-runtime/
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- one virtualenv per program, with only that program's extra ------------------------------
# --without-pip plus `pip --python`: the venv gets the packages but not pip itself.
FROM builder AS operator-venv
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir "$(ls /wheels/agentfleet-*.whl)[operator]"

FROM builder AS runtime-venv
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir "$(ls /wheels/agentfleet-*.whl)[runtime]"

# ---- agent runtime image: the program in every agent pod -------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY --from=runtime-venv /opt/venv /opt/venv
LABEL org.opencontainers.image.title="agentfleet-runtime" \
      org.opencontainers.image.source="https://github.com/agentfleet/agentfleet" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
# OpenAI-compatible API, sessions, /healthz, /readyz, /metrics.
EXPOSE 8080
# The operator mounts the revision's ConfigMap at /etc/agentfleet.
ENTRYPOINT ["agentfleet-runtime", "--config", "/etc/agentfleet/config.json"]

# ---- operator image (last stage, so a plain `docker build .` builds the operator) ------------
FROM ${PYTHON_IMAGE} AS operator
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY --from=operator-venv /opt/venv /opt/venv
LABEL org.opencontainers.image.title="agentfleet-operator" \
      org.opencontainers.image.source="https://github.com/agentfleet/agentfleet" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
# 9090: Prometheus metrics; 8081: /healthz and /readyz for the kubelet.
EXPOSE 9090 8081
ENTRYPOINT ["agentfleet-operator"]
