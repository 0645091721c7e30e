#!/bin/sh
# First start: an empty data directory gets the system tables. Every start: the database
# and user from the environment exist (an --init-file runs before connections are taken,
# so "healthy" implies them). Names and passwords are quoted as SQL literals.
set -eu
[ "${1:-}" = mariadbd ] || exec "$@"
shift
chown -R mysql:mysql /var/lib/mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
fi
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
ident() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }
init=/run/mysqld/init.sql
echo "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';" >"$init"  # only ' needs doubling
if [ -n "${MARIADB_DATABASE:-}" ]; then
  echo "CREATE DATABASE IF NOT EXISTS $(ident "$MARIADB_DATABASE");" >>"$init"
fi
if [ -n "${MARIADB_USER:-}" ]; then
  user="$(quote "$MARIADB_USER")@'%'"
  echo "CREATE USER IF NOT EXISTS $user IDENTIFIED BY $(quote "${MARIADB_PASSWORD:-}");" >>"$init"
  echo "ALTER USER $user IDENTIFIED BY $(quote "${MARIADB_PASSWORD:-}");" >>"$init"
  [ -z "${MARIADB_DATABASE:-}" ] || echo "GRANT ALL ON $(ident "$MARIADB_DATABASE").* TO $user;" >>"$init"
fi
chown mysql:mysql "$init"
chmod 0600 "$init"
exec mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 \
  --skip-name-resolve --init-file="$init" "$@"
