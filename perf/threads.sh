#!/usr/bin/env bash
# Two worker threads side by side (see perf/threads.py): nginx (2 workers), the minimal Pingora
# proxy and gatehouse passthrough with 2 threads, work stealing off and on.
#   perf/threads.sh
#   ROUNDS=5 DURATION=5 perf/threads.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. perf/lib.sh
need_tools wrk nginx

if [ -z "${GATEHOUSE_BIN:-}" ]; then
  cargo build --release --bin gatehouse --example minimal_proxy
fi
exec python3 perf/threads.py "$@"
