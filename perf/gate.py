#!/usr/bin/env python3
"""The perf gate (docs/performance.md): instructions per request, which callgrind counts the same
way on every run, against the committed baseline (perf/baseline-instructions.json). A gatehouse
scenario more than THRESHOLD above its baseline fails the gate, and the functions that grew are
printed (against the profiles the baseline was taken with, when this checkout has them). The
minimal Pingora proxy's row is reported, never gated: it is the floor, not gatehouse's code.
  perf/gate.sh                 # build, measure, compare; exit 1 on a regression
  perf/gate.sh --update        # measure and commit the result as the new baseline
  GATEHOUSE_BIN=path perf/gate.py   # gate another build
"""
import glob, json, os, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "perf", "out")
BASELINE = os.path.join(ROOT, "perf", "baseline-instructions.json")
THRESHOLD = float(os.environ.get("THRESHOLD", "0.03"))
GATED_PREFIX = "gatehouse-"


def measure(label):
    env = dict(os.environ, LABEL=label)
    before = set(glob.glob(os.path.join(OUT, "callgrind-*.json")))
    subprocess.run([sys.executable, os.path.join(ROOT, "perf", "callgrind.py")], env=env, check=True)
    new = sorted(set(glob.glob(os.path.join(OUT, "callgrind-*.json"))) - before)
    if not new:
        sys.exit("callgrind.py wrote no result")
    with open(new[-1]) as f:
        return json.load(f)


def profiles(label, scenario, n1, n2):
    return [os.path.join(OUT, f"callgrind.{scenario}.{label}.{n}.out") for n in (n1, n2)]


def main():
    update = "--update" in sys.argv
    now = measure("gate")
    counts, n1, n2 = now["instructions_per_request"], now["n1"], now["n2"]
    if update:
        with open(BASELINE, "w") as f:
            json.dump({"n1": n1, "n2": n2, "instructions_per_request": counts}, f, indent=2)
            f.write("\n")
        for scenario in counts:
            for src, dst in zip(profiles("gate", scenario, n1, n2), profiles("gate-baseline", scenario, n1, n2)):
                if os.path.exists(src):
                    shutil.copyfile(src, dst)
        print(f"baseline written: {BASELINE}")
        return 0
    with open(BASELINE) as f:
        base = json.load(f)["instructions_per_request"]
    failed = []
    print(f"{'scenario':32} {'baseline':>10} {'now':>10} {'change':>8}")
    for scenario, v in counts.items():
        b = base.get(scenario)
        if not b:
            print(f"{scenario:32} {'-':>10} {v:10,} {'new':>8}")
            continue
        change = (v - b) / b
        gated = scenario.startswith(GATED_PREFIX)
        mark = "" if gated else "  (floor, not gated)"
        if gated and change > THRESHOLD:
            failed.append(scenario)
            mark = f"  REGRESSION (> {THRESHOLD:.0%})"
        print(f"{scenario:32} {b:10,} {v:10,} {change:+8.2%}{mark}")
    for scenario in failed:
        old = profiles("gate-baseline", scenario, n1, n2)
        new = profiles("gate", scenario, n1, n2)
        print(f"\n{scenario}: what grew, per request")
        if all(os.path.exists(p) for p in old + new):
            subprocess.run([sys.executable, os.path.join(ROOT, "perf", "callgrind_diff.py"), *old, *new, "15"])
        else:
            print("(no baseline profiles in this checkout; the current profile's top functions)")
            subprocess.run([sys.executable, os.path.join(ROOT, "perf", "callgrind_diff.py"), *new, "15"])
    if failed:
        print(f"\nperf gate: FAILED ({', '.join(failed)})")
        return 1
    print("\nperf gate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
