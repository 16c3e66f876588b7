#!/usr/bin/env bash
# Side-by-side end-to-end perf on loopback: origin directly, nginx as a keepalive reverse proxy,
# gatehouse on a passthrough API, and gatehouse with rate-limit-by-key on the memory and the
# Redis store, interleaved in one run (A B C A B C ...).
#   perf/run.sh                 # defaults: 3 rounds x 10 s, 64 and 1 connections
#   ROUNDS=5 DURATION=20 perf/run.sh
# Results: a table on stdout and perf/out/<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

cargo build --release --bin gatehouse --example minimal_proxy
exec python3 perf/run.py "$@"
