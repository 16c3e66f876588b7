#!/usr/bin/env bash
# RSS soak: 10 minutes of constant load (64 connections) on the typical-API route, RSS sampled
# every 10 s, least-squares slope after a 2-minute warm-up.
#   perf/soak.sh                       # SOAK_SECONDS=600 WARMUP_SECONDS=120 ROUTE=/typ/x
# Results: JSON on stdout and perf/out/soak-<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --bin gatehouse
exec python3 perf/soak.py "$@"
