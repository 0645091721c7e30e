#!/usr/bin/env bash
# podman runs healthchecks from systemd timers; without systemd nothing runs them, and
# compose's `condition: service_healthy` never comes true. This loop runs every running
# container's healthcheck of one compose project every few seconds until killed.
# Usage: healthpump.sh PROJECT [PERIOD_SECONDS]   (started in the background)
set -uo pipefail
project=$1
period=${2:-3}
while true; do
  for name in $(podman ps --noheading --filter "label=com.docker.compose.project=$project" \
    --filter health=starting --filter health=healthy --filter health=unhealthy \
    --format '{{.Names}}' 2>/dev/null); do
    podman healthcheck run "$name" >/dev/null 2>&1
  done
  sleep "$period"
done
