#!/usr/bin/env bash
# Side-by-side end-to-end perf on loopback, interleaved in one run (A B C A B C ...): the origin
# directly, nginx as a keepalive reverse proxy, a minimal Pingora proxy (examples/minimal_proxy.rs,
# the framework's floor), and gatehouse on: passthrough, rate-limit-by-key (memory, Redis), the
# typical API (key + rate limit + 3 set-header + choose + pool; memory and Redis), a cache hit,
# and validate-jwt + a 2 KiB JSON body rewritten by set-body.
#   perf/run.sh                      # defaults: 3 rounds x 10 s, 64 and 1 connections
#   ROUNDS=5 DURATION=20 perf/run.sh
#   TARGETS=gatehouse-typical perf/run.sh   # a subset (references always run)
#   SAVE_BASELINE=1 perf/run.sh      # write perf/baseline.json from this run's ratios
#   COMPARE=1 perf/run.sh            # exit 1 if a ratio regressed >10% against perf/baseline.json
# Results: a table on stdout and perf/out/<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."

. perf/lib.sh
need_tools wrk nginx redis-server

cargo build --release --bin gatehouse --example minimal_proxy
exec python3 perf/run.py "$@"
