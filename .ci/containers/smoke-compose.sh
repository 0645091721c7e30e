#!/usr/bin/env bash
# Smoke test of compose.yaml's `sim` profile, driven by Debian's docker-compose through
# podman's Docker API, with compose.standins.yaml for the database images: every service
# healthy (the one-shots exited 0), `openvle doctor` and `openvle token create` in the
# API container, then a 2-VM event created and deployed through the REST API; torn down
# with its volumes. Usage: smoke-compose.sh (after build.sh and standins.sh).
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/lib.sh"
podman_setup

UP_TIMEOUT=300      # s for `up` (it waits for each dependency's health)
HEALTHY_TIMEOUT=120 # s for the rest to become healthy / exit 0 after `up`
ONE_SHOTS=" migrate sync-sim "
SERVICES="mariadb mongodb redis migrate pvesim sync-sim api-sim worker-sim"
project=openvle-ci-$$
work=$(mktemp -d -p "$CI_STATE")
port=$(free_port)
start=$SECONDS

COMPOSE=(docker-compose --ansi never -p "$project" --project-directory "$work" --profile sim
  -f "$ROOT/compose.yaml" -f "$CI_DIR/compose.standins.yaml")
compose() { "${COMPOSE[@]}" "$@"; }

# project_states: one line per container: service status exit-code health.
project_states() {
  local ids
  ids=$(podman ps -aq --filter "label=com.docker.compose.project=$project")
  [[ -z $ids ]] && return 0
  # shellcheck disable=SC2086  # ids are word-split on purpose
  podman inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{.State.ExitCode}} {{.State.Healthcheck.Status}}' $ids
}

fail() {
  say "states:"
  project_states >&2 || true
  local id
  for id in $(podman ps -aq --filter "label=com.docker.compose.project=$project"); do
    say "log of $(podman inspect --format '{{.Name}}' "$id") (last 60 lines):"
    podman logs --tail 60 "$id" >&2 || true
  done
  die "$*"
}

# all_ready: every service's container exists; one-shots exited 0, the rest are healthy.
all_ready() {
  local states service status code health
  states=$(project_states)
  for service in $SERVICES; do
    read -r status code health <<<"$(awk -v s="$service" '$1 == s { print $2, $3, $4 }' <<<"$states")"
    if [[ $ONE_SHOTS == *" $service "* ]]; then
      [[ $status == exited && $code != 0 ]] && fail "$service exited with $code"
      [[ $status == exited ]] || return 1
    else
      [[ $status == exited ]] && fail "$service exited with $code"
      [[ $health == healthy ]] || return 1
    fi
  done
}

start_api_service() {  # podman's Docker API for docker-compose, on a private socket
  local sock=$CI_STATE/podman.sock
  podman system service --time=0 "unix://$sock" >"$CI_STATE/podman-service.log" 2>&1 &
  at_exit "kill $! 2>/dev/null"
  for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.2; done
  [[ -S $sock ]] || die "podman system service did not start: $(cat "$CI_STATE/podman-service.log")"
  export DOCKER_HOST=unix://$sock
}

write_env() {  # the example .env with CI passwords, port and image
  grep -vE '^(MARIADB_PASSWORD|MONGO_PASSWORD)=' "$ROOT/.env.example" >"$work/.env"
  cat >>"$work/.env" <<EOF
MARIADB_PASSWORD=ci-$(od -An -N12 -tx1 /dev/urandom | tr -d " \n")
MONGO_PASSWORD=ci-$(od -An -N12 -tx1 /dev/urandom | tr -d " \n")
API_PUBLISHED_PORT=$port
OPENVLE_IMAGE=$APP_IMAGE
EOF
}

start_api_service
write_env
bash "$CI_DIR/healthpump.sh" "$project" 2 &
pump=$!
at_exit "kill $pump 2>/dev/null"
at_exit "compose down -v --remove-orphans -t 5 >/dev/null 2>&1"

say "compose --profile sim up (project $project, API on 127.0.0.1:$port)"
timeout "$UP_TIMEOUT" "${COMPOSE[@]}" up -d >"$CI_STATE/up.log" 2>&1 ||
  { cat "$CI_STATE/up.log" >&2; fail "compose up"; }
for _ in $(seq "$HEALTHY_TIMEOUT"); do all_ready && break; sleep 1; done
all_ready || fail "not every service healthy within $HEALTHY_TIMEOUT s after up"
say "every service healthy after $((SECONDS - start)) s"
kill "$pump" 2>/dev/null || true  # nothing waits on health any more: leave the 2 cores to the test
sync_log=$(podman logs "$(podman ps -aq --filter "label=com.docker.compose.project=$project" \
  --filter label=com.docker.compose.service=sync-sim)" 2>/dev/null | grep -v '^{') || true
grep -q '^sync succeeded' <<<"$sync_log" || fail "sync-sim did not report a sync: $sync_log"
say "start-up sync: $(tr -s ' \n' ' ' <<<"$sync_log")"

# README's command for the sim profile (`run --rm migrate` has the cluster's settings,
# and podman's Docker API refuses `run` of a service with links); tried 3 times, since
# on a loaded machine a check can run into doctor's 10 s timeout
for attempt in 1 2 3; do
  compose exec -T api-sim openvle doctor >"$CI_STATE/doctor.txt" 2>&1 && break
  [[ $attempt == 3 ]] && { cat "$CI_STATE/doctor.txt" >&2; fail "openvle doctor in api-sim"; }
  say "openvle doctor failed ($(tail -n 1 "$CI_STATE/doctor.txt")), again in 5 s"
  sleep 5
done
say "openvle doctor in api-sim: $(tail -n 1 "$CI_STATE/doctor.txt")"
created=$(compose exec -T api-sim openvle token create ci-smoke --scope admin) ||
  fail "openvle token create: $created"
token=$(tail -n 1 <<<"$created" | tr -d '\r')
python3 "$CI_DIR/api_smoke.py" event "http://127.0.0.1:$port" "$token" || fail "event deploy"
say "event deployed after $((SECONDS - start)) s"

compose down -v --remove-orphans -t 5 >/dev/null 2>&1 || fail "compose down"
left=$(podman volume ls -q --filter "label=com.docker.compose.project=$project")
[[ -z $left ]] || die "volumes left after down -v: $left"
say "compose smoke test passed in $((SECONDS - start)) s"
