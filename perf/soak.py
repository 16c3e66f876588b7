#!/usr/bin/env python3
"""RSS soak (see perf/soak.sh): constant load on one gatehouse route for SOAK_SECONDS (600),
sampling the gatehouse process's RSS every 10 s; reports the samples and the least-squares
slope (MB per minute) after a warm-up of WARMUP_SECONDS (120: the rate limiter's 60 s sliding
window fills first). Same pinning as perf/run.py: wrk + origin on core 0, gatehouse on core 1.
"""
import json, os, shutil, signal, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
import run  # noqa: E402  (nginx_conf, start, wait_port, rss_kb, pids_of, PORTS)

SOAK = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP = int(os.environ.get("WARMUP_SECONDS", "120"))
ROUTE = os.environ.get("ROUTE", "/typ/x")
HEADERS = ["Ocp-Apim-Subscription-Key: perf-key-0001"]


def slope(points):
    n = len(points)
    if n < 2:
        return None
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / den if den else None


def main():
    tmp = tempfile.mkdtemp(prefix="gatehouse-soak-")
    procs = []
    try:
        conf = run.nginx_conf(os.path.join(tmp, "origin"), run.PORTS["origin"],
                              f'server {{ listen 127.0.0.1:{run.PORTS["origin"]}; location / {{ return 200 "hello from origin\\n"; }} }}')
        procs.append(run.start([run.NGINX, "-c", conf, "-p", os.path.join(tmp, "origin")], run.LOAD_CORE))
        run.wait_port(run.PORTS["origin"])
        gh = run.start([os.path.join(ROOT, "target", "release", "gatehouse"), "run", "-c", os.path.join(ROOT, "perf", "gatehouse-perf.yaml")],
                       run.PROXY_CORE, env=dict(os.environ, RUST_LOG="error"))
        procs.append(gh)
        run.wait_port(run.PORTS["gatehouse"], "/pass/")
        cmd = ["taskset", "-c", run.LOAD_CORE, "wrk", "-t1", "-c64", f"-d{SOAK}s"]
        for h in HEADERS:
            cmd += ["-H", h]
        cmd.append(f"http://127.0.0.1:{run.PORTS['gatehouse']}{ROUTE}")
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        samples, t0 = [], time.time()
        while load.poll() is None:
            samples.append((round(time.time() - t0, 1), run.rss_kb(run.pids_of(gh)) / 1024))
            time.sleep(10)
        out = load.stdout.read() if load.stdout else ""
        steady = [(t / 60, v) for t, v in samples if t >= WARMUP]
        report = {
            "route": ROUTE, "seconds": SOAK, "warmup_s": WARMUP,
            "rss_mb_samples": [[t, round(v, 1)] for t, v in samples],
            "slope_mb_per_min_after_warmup": round(slope(steady), 3) if slope(steady) is not None else None,
            "wrk": [l for l in out.splitlines() if "Requests/sec" in l or "requests in" in l],
        }
        print(json.dumps(report, indent=1))
        os.makedirs(os.path.join(ROOT, "perf", "out"), exist_ok=True)
        with open(os.path.join(ROOT, "perf", "out", time.strftime("soak-%Y%m%d-%H%M%S.json")), "w") as f:
            json.dump(report, f, indent=1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
