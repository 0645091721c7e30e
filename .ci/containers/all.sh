#!/usr/bin/env bash
# The container part of CI: the Debian packages it needs, the image built from the
# Dockerfile with podman, the stand-ins, the image and compose smoke tests; ends with one
# line of timings. Images stay in podman's store, so a repeat run only rebuilds what
# changed. Usage: .ci/containers/all.sh (as root, like .ci/run).
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"

timings=()
step() {  # step NAME SCRIPT: run one script, remember how long it took
  local started=$SECONDS
  bash "$CI_DIR/$2"
  timings+=("$1=$((SECONDS - started))s")
}

started=$SECONDS
apt_install podman runc aardvark-dns iptables debootstrap docker-compose
timings+=("packages=$((SECONDS - started))s")
podman_setup
step build build.sh
step standins standins.sh
step image-smoke smoke-image.sh
step compose-smoke smoke-compose.sh
# Untagged images a week old: layers of older builds (the store would grow with every
# uv.lock change). A plain prune would drop the current build cache as well.
podman image prune -f --filter until=168h >/dev/null
say "all passed in $((SECONDS - started)) s: ${timings[*]}"
