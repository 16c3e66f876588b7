#!/usr/bin/env bash
# The perf gate: build the release binaries, count instructions per request under callgrind,
# compare with perf/baseline-instructions.json (fail on > 3% growth of a gatehouse scenario).
#   perf/gate.sh            # gate
#   perf/gate.sh --update   # take the current counts as the baseline
set -euo pipefail
cd "$(dirname "$0")/.."

. perf/lib.sh
need_tools nginx valgrind redis-server

if [ -z "${GATEHOUSE_BIN:-}" ]; then
  cargo build --release --bin gatehouse --example minimal_proxy
fi
exec python3 perf/gate.py "$@"
