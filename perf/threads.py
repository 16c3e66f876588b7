#!/usr/bin/env python3
"""Two worker threads, side by side (see perf/threads.sh): nginx with 2 workers, the minimal
Pingora proxy and gatehouse's passthrough route, each with 2 threads, work stealing off and on.

Nothing is pinned: the proxies, wrk and the origin share the machine's cores. Every proxy gets
the same environment in interleaved rounds, so the ratios between them compare; the absolute
figures are not what a machine with cores to spare for the load generator would give. CPU time
per request is read from /proc for the proxy's processes only.
  perf/threads.sh                     # 3 rounds x 10 s at 64 connections
  ROUNDS=5 DURATION=5 THREADS=2 perf/threads.sh
"""
import json, os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (nginx config, wrk, /proc readers)

ROOT = run.ROOT
THREADS = int(os.environ.get("THREADS", "2"))
CONNS = int(os.environ.get("CONNS", "64"))
PORTS = {"origin": 18000, "nginx": 18001, "minimal": 18006, "minimal-steal": 18011,
         "gatehouse": 18012, "gatehouse-steal": 18014}


def gatehouse_conf(tmp, name, port, steal):
    with open(os.path.join(ROOT, "perf", "gatehouse-perf.yaml")) as f:
        text = f.read()
    for old, new in (("threads: 1", f"threads: {THREADS}"),
                     ("work_stealing: false", f"work_stealing: {'true' if steal else 'false'}"),
                     ("127.0.0.1:18002", f"127.0.0.1:{port}"),
                     ("127.0.0.1:18003", f"127.0.0.1:{port + 1}"),
                     ("/tmp/gatehouse-perf.pid", os.path.join(tmp, f"{name}.pid")),
                     ("/tmp/gatehouse-perf-upgrade.sock", os.path.join(tmp, f"{name}.sock")),
                     ("  dir: policies", f"  dir: {os.path.join(ROOT, 'perf', 'policies')}")):
        if old not in text:
            sys.exit(f"perf/gatehouse-perf.yaml no longer holds {old!r}")
        text = text.replace(old, new)
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    run.LOAD_CORE = run.PROXY_CORE = ",".join(str(c) for c in range(os.cpu_count() or 1))
    run.DURATION = int(os.environ.get("DURATION", "10"))
    run.WRK_THREADS = THREADS
    rounds = int(os.environ.get("ROUNDS", "3"))
    tmp = tempfile.mkdtemp(prefix="gatehouse-threads-")
    procs = {}
    env = dict(os.environ, RUST_LOG="error")
    try:
        origin = run.nginx_conf(os.path.join(tmp, "origin"), PORTS["origin"],
                                f'server {{ listen 127.0.0.1:{PORTS["origin"]}; location / {{ return 200 "hello from origin\\n"; }} }}')
        proxy = run.nginx_conf(os.path.join(tmp, "proxy"), PORTS["nginx"],
                               f'upstream o {{ server 127.0.0.1:{PORTS["origin"]}; keepalive 128; }}'
                               f' server {{ listen 127.0.0.1:{PORTS["nginx"]}; location / {{ proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}')
        with open(proxy) as f:
            text = f.read()
        with open(proxy, "w") as f:
            f.write(text.replace("worker_processes 1;", f"worker_processes {THREADS};"))
        procs["origin"] = run.start([run.NGINX, "-c", origin, "-p", os.path.join(tmp, "origin")], run.LOAD_CORE)
        run.wait_port(PORTS["origin"])
        procs["nginx"] = run.start([run.NGINX, "-c", proxy, "-p", os.path.join(tmp, "proxy")], run.PROXY_CORE)
        minimal = os.environ.get("MINIMAL_BIN", os.path.join(ROOT, "target", "release", "examples", "minimal_proxy"))
        gh = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "target", "release", "gatehouse"))
        origin_addr = f"127.0.0.1:{PORTS['origin']}"
        for name, steal in (("minimal", False), ("minimal-steal", True)):
            cmd = [minimal, f"127.0.0.1:{PORTS[name]}", origin_addr, str(THREADS)] + (["steal"] if steal else [])
            procs[name] = run.start(cmd, run.PROXY_CORE, env=env)
        for name, steal in (("gatehouse", False), ("gatehouse-steal", True)):
            procs[name] = run.start([gh, "run", "-c", gatehouse_conf(tmp, name, PORTS[name], steal)], run.PROXY_CORE, env=env)
        for name in ("nginx", "minimal", "minimal-steal"):
            run.wait_port(PORTS[name])
        for name in ("gatehouse", "gatehouse-steal"):
            run.wait_port(PORTS[name], "/pass/")
        order = ["nginx", "minimal", "gatehouse", "minimal-steal", "gatehouse-steal"]
        results = {}
        for rnd in range(rounds):
            for name in order:
                pids = run.pids_of(procs[name])
                t0 = run.cpu_ticks(pids)
                r = run.wrk(PORTS[name], "/pass/", CONNS)
                ticks = run.cpu_ticks(pids) - t0
                r["cpu_us_per_req"] = ticks * 1e6 / run.CLK_TCK / r["requests"] if r["requests"] else None
                results.setdefault(name, []).append(r)
                print(f"  round {rnd + 1} {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']} ms, "
                      f"cpu/req {r['cpu_us_per_req']:.1f} us", flush=True)
        med = {n: {k: run.median([r[k] for r in rs]) for k in ("rps", "p99_ms", "cpu_us_per_req")}
               for n, rs in results.items()}
        print(f"\n{THREADS} threads, {CONNS} connections, medians of {rounds} rounds x {run.DURATION} s")
        print(f"{'proxy':18} {'req/s':>8} {'p99 ms':>7} {'CPU us':>7} {'rps/ngx':>8} {'rps/min':>8} {'cpu/min':>8}")
        for n in order:
            v, ref = med[n], med["minimal-steal" if n.endswith("-steal") else "minimal"]
            print(f"{n:18} {v['rps']:8.0f} {v['p99_ms']:7.3f} {v['cpu_us_per_req']:7.1f} "
                  f"{v['rps'] / med['nginx']['rps']:8.2f} {v['rps'] / ref['rps']:8.2f} {v['cpu_us_per_req'] / ref['cpu_us_per_req']:8.2f}")
        out_dir = os.path.join(ROOT, "perf", "out")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, time.strftime("threads-%Y%m%d-%H%M%S") + ".json")
        with open(out, "w") as f:
            json.dump({"threads": THREADS, "connections": CONNS, "rounds": rounds, "duration_s": run.DURATION,
                       "medians": med, "raw": results}, f, indent=2)
        print(f"\nwritten: {out}")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
