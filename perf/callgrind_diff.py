#!/usr/bin/env python3
"""Per-function exclusive instructions per request between two callgrind profiles of the same
binary and route with N1 and N2 requests (what perf/callgrind.py writes):
  perf/callgrind_diff.py perf/out/callgrind.gatehouse-passthrough.{300,1300}.out [top] [--inclusive]
"""
import re, subprocess, sys


INCLUSIVE = "--inclusive" in sys.argv
if INCLUSIVE:
    sys.argv.remove("--inclusive")


def exclusive(path):
    args = ["callgrind_annotate", "--auto=no", "--threshold=100"] + (["--inclusive=yes"] if INCLUSIVE else [])
    out = subprocess.run(args + [path], capture_output=True, text=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            fn = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
            costs[fn] = costs.get(fn, 0) + int(m.group(1).replace(",", ""))
    return costs


def main():
    a, b = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    n = lambda p: int(re.search(r"\.(\d+)\.out$", p).group(1))
    per = n(b) - n(a)
    ca, cb = exclusive(a), exclusive(b)
    rows = sorted(((cb.get(f, 0) - ca.get(f, 0)) / per, f) for f in set(ca) | set(cb))
    rows.reverse()
    total = sum(r[0] for r in rows)
    print(f"{total:10.0f}  instructions/request in all")
    for v, f in rows[:top]:
        print(f"{v:10.0f}  {f[-150:]}")


if __name__ == "__main__":
    main()
