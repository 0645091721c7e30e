#!/usr/bin/env bash
# The two images the Dockerfile starts FROM, made without a registry (none is reachable
# here) and cached in podman's store under a hash of the function that builds each:
#   localhost/python:3.11-slim-bookworm  Debian bookworm minbase + python3 (debootstrap)
#   localhost/uv:0.13                    /uv and /uvx from PyPI's uv 0.13 wheel
# Usage: base-images.sh (after lib.sh's podman_setup, or standalone).
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"
podman_setup

# The Debian mirror apt already uses (deb822 .sources or one-line .list).
debian_mirror() {
  local url
  url=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
    grep -v security | head -n1 | awk '{print $2}')
  echo "${url:-http://deb.debian.org/debian}"
}

build_python_image() {
  local rootfs=$1 mirror
  mirror=$(debian_mirror)
  say "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$CI_STATE/debootstrap.log" 2>&1 ||
    { tail -n 30 "$CI_STATE/debootstrap.log" >&2; die "debootstrap"; }
  local name # the paths python:3.11-slim has, which the Dockerfile's UV_PYTHON names
  for name in python3 python python3.11; do ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/$name"; done
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
}

build_uv_image() {
  local dir=$1/uv
  say "uv 0.13 from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/wheel" 'uv==0.13.*' \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)  # local find-links
  python3 -m zipfile -e "$dir"/wheel/uv-*.whl "$dir/unpacked"
  mkdir -p "$dir/root"
  install -m 0755 "$dir"/unpacked/uv-*.data/scripts/uv "$dir"/unpacked/uv-*.data/scripts/uvx "$dir/root/"
  tar -C "$dir/root" -c . | podman import --quiet - "$UV_IMAGE" >/dev/null
}

# ensure_image IMAGE BUILDER: build IMAGE unless its key tag is in the store; the key is
# the builder's own source text, so changing one builder rebuilds only its image.
ensure_image() {
  local image=$1 builder=$2 key keyed work
  key=$(KEY_EXTRA="$image $(declare -f "$builder" debian_mirror)" content_key /dev/null)
  keyed="${image%%:*}:key-$key"
  if podman image exists "$keyed"; then
    podman tag "$keyed" "$image"
    return 0
  fi
  work=$(mktemp -d -p "$CI_STATE")
  "$builder" "$work"
  rm -rf "$work"
  podman tag "$image" "$keyed"
  keep_only_tag "${image%%:*}" "key-$key"
}

start=$SECONDS
ensure_image "$BASE_IMAGE" build_python_image
ensure_image "$UV_IMAGE" build_uv_image
say "base images ready in $((SECONDS - start)) s"
