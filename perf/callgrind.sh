#!/usr/bin/env bash
# Instructions per request under valgrind's callgrind (see perf/callgrind.py):
#   perf/callgrind.sh            # minimal Pingora, gatehouse passthrough and typical
#   N1=500 N2=2500 perf/callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. perf/lib.sh
need_tools nginx valgrind

cargo build --release --bin gatehouse --example minimal_proxy
exec python3 perf/callgrind.py "$@"
