#!/usr/bin/env bash
# The Prometheus alerting rules through promtool (Debian's `prometheus` package): the
# rules parse, and their unit tests (deploy/prometheus/alerts.test.yml) pass.
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/containers/lib.sh"  # apt_install
apt_install prometheus
cd "$ROOT"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
