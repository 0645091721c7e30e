# shellcheck shell=bash disable=SC2034  # sourced: the names are used by the scripts
# Shared by the container CI scripts (sourced, never run): image names, podman's
# configuration for these machines, content-hash cache keys, Debian packages, logging.
# Why each choice was made (podman 4.3.1's quirks, the stand-ins for the registry
# images) is said where it is made; README's "Production deployment" sums it up.

CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CI_DIR/../.." && pwd)
BASE_IMAGE=localhost/python:3.11-slim-bookworm  # what the Dockerfile's PYTHON_IMAGE names
UV_IMAGE=localhost/uv:0.13                      # stands in for ghcr.io/astral-sh/uv:0.13
APP_IMAGE=${OPENVLE_CI_IMAGE:-localhost/openvle-proxmox:ci}
STANDIN_REPO=localhost/openvle-ci               # stand-ins: $STANDIN_REPO/NAME:latest
HOST_CA=/etc/ssl/certs/ca-certificates.crt      # holds the intercepting proxy's CA

# at_exit COMMAND: run COMMAND (a string) when the script exits, last registered first.
AT_EXIT=()
at_exit() {
  AT_EXIT=("$1" "${AT_EXIT[@]}")
  # shellcheck disable=SC2154  # cmd is the loop variable inside the trap string
  trap 'for cmd in "${AT_EXIT[@]}"; do eval "$cmd" || true; done' EXIT
  trap 'exit 130' INT  # so that a stopped CI run cleans up too
  trap 'exit 143' TERM
}

say() { printf 'containers: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# apt_install PKG...: install the Debian packages that are missing (idempotent; waits
# for another apt run to finish; refreshes the package lists only when needed).
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >/dev/null
  }
}

# podman_setup: point podman at a private containers.conf (rlimits within the hard
# limit, runc) unless the caller already did; CI_STATE is a scratch directory.
podman_setup() {
  if [[ -z ${CI_STATE:-} ]]; then
    CI_STATE=$(mktemp -d -t openvle-ci.XXXXXX)
    export CI_STATE
    at_exit 'rm -rf "$CI_STATE"'
  fi
  [[ -n ${CONTAINERS_CONF:-} ]] && return 0
  local hard
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=1048576
  sed "s/@NOFILE@/$hard/g" "$CI_DIR/containers.conf.in" >"$CI_STATE/containers.conf"
  export CONTAINERS_CONF=$CI_STATE/containers.conf
}

# content_key FILE... : a short hash of the files' contents plus $KEY_EXTRA (a cache key).
content_key() {
  { cat "$@"; printf '%s' "${KEY_EXTRA:-}"; } | sha256sum | cut -c1-16
}

# keep_only_tag REPO TAG: drop REPO's other key-* tags (left by older inputs; the image
# goes too when nothing else names it), so the store does not grow with every change.
keep_only_tag() {
  local repo=$1 keep=$2 ref
  for ref in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "$repo"); do
    case $ref in "$repo:$keep" | "$repo":key-*) [[ $ref == "$repo:$keep" ]] || podman rmi "$ref" >/dev/null 2>&1 || true ;; esac
  done
}

# quiet_podman ARGS...: podman without its one error per container with a healthcheck when
# systemd is missing (it would add a timer; healthpump.sh runs the checks instead).
quiet_podman() {
  podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}

# free_port: a TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
