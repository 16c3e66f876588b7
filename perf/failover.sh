#!/usr/bin/env bash
# Failover scenario: steady load through a 2-member pool, one origin killed mid-run; reports
# client-visible failures and their time window, without and with a retry policy.
#   perf/failover.sh                  # BEFORE=3 AFTER=5 CLIENTS=8 seconds / clients
# Results: JSON on stdout and perf/out/failover-<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
cargo build --release
exec python3 perf/failover.py "$@"
