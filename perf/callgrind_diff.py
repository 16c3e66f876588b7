#!/usr/bin/env python3
"""Per-function exclusive instructions per request between two callgrind profiles of the same
binary and route with N1 and N2 requests (what perf/callgrind.py writes):
  perf/callgrind_diff.py perf/out/callgrind.gatehouse-passthrough.{300,1300}.out [top] [--inclusive]
With four profiles, what changed per request from one build to another (LABEL=before / after
runs of perf/callgrind.py):
  perf/callgrind_diff.py A.300.out A.1300.out B.300.out B.1300.out [top] [--inclusive]
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


def per_request(a, b):
    n = lambda p: int(re.search(r"\.(\d+)\.out$", p).group(1))
    per = n(b) - n(a)
    ca, cb = exclusive(a), exclusive(b)
    return {f: (cb.get(f, 0) - ca.get(f, 0)) / per for f in set(ca) | set(cb)}


def main():
    files = [x for x in sys.argv[1:] if x.endswith(".out")]
    rest = [x for x in sys.argv[1:] if not x.endswith(".out")]
    top = int(rest[0]) if rest else 40
    if len(files) == 4:
        before, after = per_request(files[0], files[1]), per_request(files[2], files[3])
        costs = {f: after.get(f, 0) - before.get(f, 0) for f in set(before) | set(after)}
    else:
        costs = per_request(files[0], files[1])
    rows = sorted((v, f) for f, v in costs.items())
    rows.reverse()
    total = sum(r[0] for r in rows)
    print(f"{total:10.0f}  instructions/request in all")
    for v, f in rows[:top]:
        print(f"{v:10.0f}  {f[-150:]}")


if __name__ == "__main__":
    main()
