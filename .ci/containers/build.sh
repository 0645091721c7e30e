#!/usr/bin/env bash
# Build the project's Dockerfile, unmodified, with podman: the base images come from
# base-images.sh, podman's layer cache keeps the dependency layer until uv.lock or
# pyproject.toml change, and the previous build's image is removed once replaced.
# Usage: build.sh (tags $APP_IMAGE, localhost/openvle-proxmox:ci by default).
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"
podman_setup
bash "$CI_DIR/base-images.sh"

start=$SECONDS
previous=$(podman image inspect --format '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)
say "building $APP_IMAGE"
# --format docker: the OCI format silently drops HEALTHCHECK. The CA bundle and uv.toml
# are build-time mounts (the TLS-intercepting proxy's CA); neither lands in the image.
podman build --format docker --layers \
  --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg UV_IMAGE="$UV_IMAGE" \
  -v "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro" -v "$CI_DIR/uv.toml:/etc/uv/uv.toml:ro" \
  -t "$APP_IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$CI_STATE/build.log" 2>&1 ||
  { tail -n 40 "$CI_STATE/build.log" >&2; die "podman build"; }

current=$(podman image inspect --format '{{.Id}}' "$APP_IMAGE")
if [[ -n $previous && $previous != "$current" ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true  # still used by a container: kept
fi
health=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$APP_IMAGE")
[[ $health == *CMD-SHELL* ]] || die "the image has no CMD-SHELL HEALTHCHECK: $health"
say "built $APP_IMAGE ($(podman image inspect --format '{{.Size}}' "$APP_IMAGE" | numfmt --to=si)B) in $((SECONDS - start)) s"
