#!/usr/bin/env bash
# Smoke test of the image alone: `openvle --help`; `openvle demo` (simulator, API and
# worker in one container) up to its JSON ready line; /health/ready 200 and the demo
# templates listed through the published port; the image's HEALTHCHECK passes.
# Usage: smoke-image.sh (after build.sh). Prints the container's log on failure.
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"
podman_setup

READY_TIMEOUT=120
start=$SECONDS
name=openvle-ci-demo-$$
port=$(free_port)

fail() {
  say "log of $name:"
  podman logs "$name" >&2 || true
  die "$*"
}

help=$(quiet_podman run --rm "$APP_IMAGE" openvle --help) || die "openvle --help: $help"
for command in api worker migrate demo doctor token; do
  grep -qw "$command" <<<"$help" || die "openvle --help does not list $command"
done

at_exit "podman rm -f -t 5 $name >/dev/null 2>&1"
# API_PORT is the port the image's HEALTHCHECK probes; the demo listens on the same.
quiet_podman run -d --name "$name" -p "127.0.0.1:$port:8000" "$APP_IMAGE" \
  openvle demo --host 0.0.0.0 --port 8000 --time-scale 0 >/dev/null
token=
for _ in $(seq "$READY_TIMEOUT"); do
  [[ $(podman inspect --format '{{.State.Running}}' "$name") == true ]] || fail "openvle demo exited"
  token=$(podman logs "$name" 2>/dev/null | python3 "$CI_DIR/api_smoke.py" ready-line 2>/dev/null) && break
  sleep 1
done
[[ -n $token ]] || fail "no ready line from openvle demo within $READY_TIMEOUT s"

python3 "$CI_DIR/api_smoke.py" templates "http://127.0.0.1:$port" "$token" || fail "API checks"
podman healthcheck run "$name" >/dev/null || fail "the image's HEALTHCHECK failed"
say "image smoke test passed in $((SECONDS - start)) s"
