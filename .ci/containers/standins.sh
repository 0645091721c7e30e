#!/usr/bin/env bash
# Stand-ins for the registry images compose.yaml names (mariadb:11.4, mongo:7.0,
# redis:7.4-alpine), built from Debian packages and PyPI on the base image, tagged
# $STANDIN_REPO/NAME:latest (what compose.standins.yaml uses) and cached under a hash of
# their build files, the base image and the nx-27017 version uv.lock pins.
# Usage: standins.sh (needs base-images.sh's images).
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"
podman_setup

# The nx-27017 version in uv.lock (the one the test suite runs against).
nx_version() {
  awk '/^name = "nx-27017"$/ { found = 1; next } found && /^version = / { gsub(/"/, "", $3); print $3; exit }' \
    "$ROOT/uv.lock"
}

# build_standin NAME: build $STANDIN_REPO/NAME unless its key tag is in the store.
build_standin() {
  local name=$1 dir=$CI_DIR/standins/$1 key image=$STANDIN_REPO/$1
  local base_id uv_id nx
  base_id=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")
  uv_id=$(podman image inspect --format '{{.Id}}' "$UV_IMAGE")
  nx=$(nx_version)
  key=$(KEY_EXTRA="$base_id $uv_id $nx" content_key "$dir"/*)
  if ! podman image exists "$image:key-$key"; then
    say "building stand-in $name"
    podman build --quiet --format docker --layers \
      --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg UV_IMAGE="$UV_IMAGE" \
      --build-arg NX_VERSION="$nx" \
      -v "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro" -v "$CI_DIR/uv.toml:/etc/uv/uv.toml:ro" \
      -t "$image:key-$key" "$dir" >/dev/null
  fi
  podman tag "$image:key-$key" "$image:latest"
  keep_only_tag "$image" "key-$key"
}

start=$SECONDS
[[ -n $(nx_version) ]] || die "no nx-27017 in uv.lock"
for name in mariadb redis mongodb; do build_standin "$name"; done
say "stand-ins ready in $((SECONDS - start)) s"
