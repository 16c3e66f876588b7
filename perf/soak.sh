#!/usr/bin/env bash
# RSS soak: 10 minutes of constant load (64 connections) on the typical-API route, RSS sampled
# every 10 s, least-squares slope after a 2-minute warm-up.
#   perf/soak.sh                       # SOAK_SECONDS=600 WARMUP_SECONDS=120 ROUTE=/typ/x
# Results: JSON on stdout and perf/out/soak-<timestamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
need_tools wrk nginx
cargo build --release --bin gatehouse
exec python3 perf/soak.py "$@"
