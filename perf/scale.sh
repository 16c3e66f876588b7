#!/usr/bin/env bash
# Memory and start-up against the size of the configuration (see perf/scale.py):
#   perf/scale.sh                        # 1, 1,000 and 10,000 APIs x 10 operations
#   SIZES=1000 OWN_POLICIES=1 perf/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. perf/lib.sh
need_tools nginx

cargo build --release --bin gatehouse
exec python3 perf/scale.py "$@"
