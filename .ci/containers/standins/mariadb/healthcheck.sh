#!/bin/sh
# The two checks of the official image's healthcheck.sh that compose.yaml asks for:
# --connect (the server answers) and --innodb_initialized (InnoDB is up).
set -eu
for arg in "$@"; do
  case $arg in
    --connect) mariadb-admin --protocol=socket ping >/dev/null ;;
    --innodb_initialized)
      engines=$(mariadb --protocol=socket -N -e "SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB'")
      case $engines in YES | DEFAULT) ;; *) exit 1 ;; esac ;;
    *) echo "healthcheck.sh: unsupported option $arg" >&2; exit 2 ;;
  esac
done
