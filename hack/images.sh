#!/usr/bin/env bash
# Build the images the local real node runs, without a Docker engine, and import them into its
# containerd:
#   python      a Python 3.11 base made from Debian bookworm packages (debootstrap minbase), the
#               Dockerfile's PYTHON_IMAGE: the official python image cannot be pulled here
#   runtime     `buildah bud --target runtime` of the project's Dockerfile, unchanged
#   operator    `buildah bud --target operator` of the same Dockerfile
#   redis       Debian's redis-server, for StatePolicies with a provisioned Redis
#   prometheus  Prometheus compiled by hack/build-prometheus.sh, the in-cluster Prometheus of `make dev`
#   pause       the pod sandbox process, a tiny static Go program (hack/pause)
#
#   hack/images.sh build           build what is missing (cached; a warm call takes about a second)
#   hack/images.sh tags            print NAME_IMAGE=reference lines for the current sources
#   hack/images.sh import SOCKET   build, then import every image into the containerd at SOCKET
#
# Each image is tagged with a hash of its inputs (the Dockerfile and the files it copies, this
# script, the package list), so a changed source makes a new tag: Agents whose image changes roll
# out a new revision, and an unchanged tree reuses the cached OCI archive under
# ~/.cache/agentfleet/images/.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HACK_DIR/.." && pwd)
CACHE_ROOT=${AGENTFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentfleet}
IMAGES_DIR="$CACHE_ROOT/images"
SUITE=bookworm
# The mirror apt on this machine already uses (deb.debian.org when none is configured).
MIRROR=${AGENTFLEET_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# vfs works everywhere (no overlay-on-overlay question); the images are few and built once.
BUILDAH=(buildah --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# hash_of FILE_OR_DIR...: a short digest of paths and contents, independent of mtimes.
hash_of() {
  python3 - "$ROOT" "$@" <<'PY'
import hashlib, os, sys

root, inputs = sys.argv[1], sys.argv[2:]
skip = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def files_under(path):
    if os.path.isfile(path):
        return [path]
    found = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.endswith(".egg-info"))
        found += [os.path.join(folder, n) for n in sorted(names) if not n.endswith(".pyc")]
    return found


digest = hashlib.sha256()
for item in inputs:
    if item.startswith("@"):  # a literal input (a version, a package list, another hash)
        digest.update(item.encode() + b"\0")
        continue
    for f in files_under(os.path.join(root, item)):
        digest.update(os.path.relpath(f, root).encode() + b"\0")
        with open(f, "rb") as fh:
            digest.update(hashlib.sha256(fh.read()).digest())
print(digest.hexdigest()[:12])
PY
}

# Bump when a recipe below changes in a way that changes an image (its inputs are hashed besides).
RECIPE=1
SCRIPT_HASH="recipe-$RECIPE"
PY_PACKAGES="python3,python3-venv,ca-certificates"
PYTHON_TAG="localhost/agentfleet-python:3.11-$(hash_of "@$SCRIPT_HASH" "@$PY_PACKAGES")"
APP_INPUTS=(Dockerfile .dockerignore pyproject.toml README.md contract operator agent-runtime)
APP_HASH=$(hash_of "@$PYTHON_TAG" "${APP_INPUTS[@]}")
RUNTIME_TAG="localhost/agentfleet-runtime:$APP_HASH"
OPERATOR_TAG="localhost/agentfleet-operator:$APP_HASH"
REDIS_TAG="localhost/agentfleet-redis:7.0-$(hash_of "@$SCRIPT_HASH" "@redis-server")"
PROMETHEUS_VERSION=$("$HACK_DIR/build-prometheus.sh" --print-version)
PROMETHEUS_TAG="localhost/agentfleet-prometheus:$PROMETHEUS_VERSION-$(hash_of "@$SCRIPT_HASH" hack/build-prometheus.sh)"
PAUSE_TAG="localhost/agentfleet-pause:$(hash_of "@$SCRIPT_HASH" hack/pause)"
ALL_TAGS=("$PYTHON_TAG" "$RUNTIME_TAG" "$OPERATOR_TAG" "$REDIS_TAG" "$PROMETHEUS_TAG" "$PAUSE_TAG")

archive_of() { local ref=$1; echo "$IMAGES_DIR/$(tr '/:' '__' <<<"${ref#localhost/}").tar"; }
cached() { [[ -s $(archive_of "$1") ]]; }
in_storage() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

# save REF: the image as an OCI archive, the form `ctr images import` takes.
save() {
  local ref=$1 out
  out=$(archive_of "$ref")
  mkdir -p "$IMAGES_DIR"
  "${BUILDAH[@]}" push -q "$ref" "oci-archive:$out.tmp:$ref" >/dev/null
  mv "$out.tmp" "$out"
}

# restore REF: put a cached archive back into buildah's storage (a later build stage needs it).
restore() { in_storage "$1" || "${BUILDAH[@]}" pull -q "oci-archive:$(archive_of "$1")" >/dev/null; }

# rootfs_image REF PACKAGES CONFIG...: debootstrap minbase + PACKAGES, committed as REF.
# CONFIG are `buildah config` options (entrypoint, user, env).
rootfs_image() {
  local ref=$1 packages=$2 work ctr mnt
  shift 2
  command -v debootstrap >/dev/null || die "debootstrap is required (apt-get install debootstrap)"
  work=$(mktemp -d)
  log "debootstrap $SUITE minbase + $packages for $ref"
  mkdir -p "$CACHE_ROOT/debs"
  debootstrap --variant=minbase --include="$packages" --cache-dir="$CACHE_ROOT/debs" \
    "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; rm -rf "$work"; die "debootstrap failed"; }
  # No package caches or lists in the image.
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  if [[ -n ${ROOTFS_HOOK:-} ]]; then "$ROOTFS_HOOK" "$work/rootfs"; fi
  ctr=$("${BUILDAH[@]}" from scratch)
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  cp -a "$work/rootfs/." "$mnt/"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" config "$@" "$ctr"
  "${BUILDAH[@]}" commit -q "$ctr" "$ref" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  rm -rf "$work"
}

# Debian's python has no global pip (PEP 668); a venv at /usr/local makes the base look like the
# official slim image: /usr/local/bin/python with pip, which the Dockerfile's stages expect.
python_venv_hook() { chroot "$1" python3 -m venv /usr/local; }

build_python() {
  cached "$PYTHON_TAG" && return 0
  ROOTFS_HOOK=python_venv_hook rootfs_image "$PYTHON_TAG" "$PY_PACKAGES" \
    --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3
  save "$PYTHON_TAG"
}

build_app() {
  local target=$1 ref=$2
  cached "$ref" && return 0
  restore "$PYTHON_TAG"
  log "buildah bud --target $target (the project's Dockerfile)"
  # pip inside the build verifies PyPI against this machine's CA bundle: mounted, never copied
  # into a layer. --network host: the build container has no network of its own here.
  "${BUILDAH[@]}" bud -q --layers --isolation chroot --network host \
    -v /etc/ssl/certs:/etc/ssl/certs:ro \
    --build-arg "PYTHON_IMAGE=$PYTHON_TAG" --target "$target" -t "$ref" "$ROOT" >/dev/null
  save "$ref"
  prune_older "$ref"
}

# prune_older REF: every source change builds a new tag, and vfs storage copies each layer in
# full (about 400 MB an image), so a day of edits filled the disk. Keep the newest few archives of
# this image (other checkouts on the machine may still use theirs) and drop the rest, together
# with buildah's copies of them and the build's dangling intermediate images.
KEEP_ARCHIVES=3
prune_older() {
  local ref=$1 name old
  name=$(basename "$(archive_of "$ref")")
  name=${name%%_*}
  # shellcheck disable=SC2012  # names are ours: no spaces or newlines
  for old in $(ls -t "$IMAGES_DIR/${name}_"*.tar 2>/dev/null | tail -n +$((KEEP_ARCHIVES + 1))); do
    old=$(basename "$old" .tar)
    rm -f "$IMAGES_DIR/$old.tar"
    "${BUILDAH[@]}" rmi -f "localhost/${old/_/:}" >/dev/null 2>&1 || true
  done
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
}

build_redis() {
  cached "$REDIS_TAG" && return 0
  # The StatefulSet runs `redis-server /etc/redis/<config>` as uid 999 with its data on a volume.
  rootfs_image "$REDIS_TAG" redis-server --user 999:999 --entrypoint '["redis-server"]' --port 6379
  save "$REDIS_TAG"
}

# The same static Prometheus the tests run (hack/build-prometheus.sh), alone in the image: it talks
# only to the API server (service account CA) and to pods over plain HTTP, so it needs no CA bundle.
build_prometheus() {
  cached "$PROMETHEUS_TAG" && return 0
  local bin ctr
  bin=$("$HACK_DIR/build-prometheus.sh")
  log "prometheus $PROMETHEUS_VERSION"
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy -q "$ctr" "$bin/prometheus" /bin/prometheus >/dev/null
  "${BUILDAH[@]}" config --entrypoint '["/bin/prometheus"]' --user 65534:65534 --port 9090 \
    --workingdir /prometheus "$ctr"
  "${BUILDAH[@]}" commit -q "$ctr" "$PROMETHEUS_TAG" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  save "$PROMETHEUS_TAG"
}

build_pause() {
  cached "$PAUSE_TAG" && return 0
  local work ctr
  work=$(mktemp -d)
  log "pause (hack/pause)"
  (cd "$HACK_DIR/pause" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/pause" .)
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy -q "$ctr" "$work/pause" /pause >/dev/null
  "${BUILDAH[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  "${BUILDAH[@]}" commit -q "$ctr" "$PAUSE_TAG" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  rm -rf "$work"
  save "$PAUSE_TAG"
}

cmd_tags() {
  cat <<EOF
PYTHON_IMAGE=$PYTHON_TAG
RUNTIME_IMAGE=$RUNTIME_TAG
OPERATOR_IMAGE=$OPERATOR_TAG
REDIS_IMAGE=$REDIS_TAG
PROMETHEUS_IMAGE=$PROMETHEUS_TAG
PAUSE_IMAGE=$PAUSE_TAG
EOF
}

cmd_build() {
  command -v buildah >/dev/null || die "buildah is required (apt-get install buildah)"
  [[ $(id -u) -eq 0 ]] || die "building images needs root (debootstrap, buildah chroot isolation)"
  local started=$SECONDS
  build_pause
  build_python
  build_app runtime "$RUNTIME_TAG"
  build_app operator "$OPERATOR_TAG"
  build_redis
  build_prometheus
  log "images ready ($((SECONDS - started))s): ${ALL_TAGS[*]}"
}

# import SOCKET: into containerd's k8s.io namespace, where the kubelet's CRI looks.
cmd_import() {
  local socket=$1 ref have
  cmd_build
  have=$(ctr -a "$socket" -n k8s.io images ls -q)
  for ref in "${ALL_TAGS[@]}"; do
    [[ $ref == "$PYTHON_TAG" ]] && continue
    grep -qxF "$ref" <<<"$have" && continue
    log "importing $ref"
    ctr -a "$socket" -n k8s.io images import --no-unpack=false "$(archive_of "$ref")" >/dev/null
  done
}

case "${1:-build}" in
  build) cmd_build ;;
  tags) cmd_tags ;;
  import) cmd_import "${2:?usage: $0 import SOCKET}" ;;
  *) echo "usage: $0 build|tags|import SOCKET" >&2; exit 2 ;;
esac
