#!/usr/bin/env bash
# The Prometheus files through promtool (Debian's `prometheus` package): the scrape
# configuration and the rules parse, and the rules' unit tests (alerts.test.yml) pass.
set -euo pipefail
# shellcheck source=.ci/containers/lib.sh
source "$(dirname "$0")/containers/lib.sh"  # apt_install
apt_install prometheus
cd "$ROOT"
promtool check config deploy/prometheus/prometheus.yml  # its rule_files too
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
