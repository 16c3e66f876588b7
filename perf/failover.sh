#!/usr/bin/env bash
# Failover scenario: steady load through a 2-member pool, one origin killed mid-run; reports
# client-visible failures and their time window, without and with a retry policy.
#   perf/failover.sh                  # BEFORE=3 AFTER=5 CLIENTS=8 seconds / clients
# Results: JSON on stdout and perf/out/failover-<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
need_tools nginx
cargo build --release
exec python3 perf/failover.py "$@"
