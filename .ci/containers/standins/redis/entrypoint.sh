#!/bin/sh
# Like the official image's entrypoint: redis-server without a config file runs with
# protected mode off (it only listens on the container network) as user redis.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
