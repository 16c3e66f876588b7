#!/usr/bin/env python3
"""Drive the side-by-side perf run (see perf/run.sh).

Pinning: the load generator (wrk) and the origin run on core 0; each proxy's single worker runs
on core 1. CPU time per request is read from /proc (utime + stime of the proxy's processes)
around each wrk run, so it counts only the proxy's own work.
"""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNS = [int(c) for c in os.environ.get("CONNS", "64,1").split(",")]
LOAD_CORE, PROXY_CORE = "0", "1"
WRK_THREADS = 1  # perf/threads.py loads with more
PORTS = {"origin": 18000, "nginx": 18001, "gatehouse": 18002, "admin": 18003, "gatehouse_redis": 18004, "admin_redis": 18005, "pingora": 18006,
         "gatehouse_logged": 18007, "admin_logged": 18008, "redis": 18010}
TARGETS = os.environ.get("TARGETS")  # comma-separated subset of target names
COMPARE = os.environ.get("COMPARE") == "1"  # flag gatehouse ratios that got worse beyond their noise (compare())
SAVE_BASELINE = os.environ.get("SAVE_BASELINE") == "1"
BASELINE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "perf", "baseline.json")


def hs256_token(secret, claims):
    """An HS256 JWT for the validate-jwt route (stdlib only)."""
    import base64, hashlib, hmac
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps(claims).encode())
    sig = enc(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def json_2k():
    items, i = [], 0
    while len(json.dumps({"items": items})) < 2000:
        items.append({"id": i, "name": f"item-{i}", "tags": ["alpha", "beta"], "price": i * 1.5})
        i += 1
    return json.dumps({"items": items})
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def nginx_conf(prefix, port, body):
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  {body}
}}
""")
    return path


def start(cmd, core, stdout=subprocess.DEVNULL, **kw):
    return subprocess.Popen(["taskset", "-c", core] + cmd, stdout=stdout, stderr=subprocess.DEVNULL, **kw)


def wait_port(port, path="/", timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"port {port} did not answer")


def pids_of(proc):
    """The process and its children (nginx master + worker)."""
    out = [proc.pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        out += [int(k) for k in kids]
    except FileNotFoundError:
        pass
    return out


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+)", f.read())
                total += int(m.group(1)) if m else 0
        except FileNotFoundError:
            pass
    return total


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, path, conns, headers=()):
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", f"-t{WRK_THREADS}", f"-c{conns}", f"-d{DURATION}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {m.group(1): to_ms(m.group(2), m.group(3)) for m in re.finditer(r"\s(50|99)%\s+([\d.]+)(us|ms|s)", out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": reqs, "rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"), "non2xx": int(errors.group(1)) if errors else 0}


def main():
    tmp = tempfile.mkdtemp(prefix="gatehouse-perf-")
    procs = []
    try:
        origin_conf = nginx_conf(os.path.join(tmp, "origin"), PORTS["origin"],
                                 f'server {{ listen 127.0.0.1:{PORTS["origin"]}; location / {{ return 200 "hello from origin\\n"; }}'
                                 f' location /json {{ default_type application/json; return 200 \'{json_2k()}\'; }} }}')
        proxy_conf = nginx_conf(os.path.join(tmp, "proxy"), PORTS["nginx"],
                                f'upstream o {{ server 127.0.0.1:{PORTS["origin"]}; keepalive 128; }}'
                                f' server {{ listen 127.0.0.1:{PORTS["nginx"]}; location / {{ proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}')
        procs.append(("origin", start([NGINX, "-c", origin_conf, "-p", os.path.join(tmp, "origin")], LOAD_CORE)))
        wait_port(PORTS["origin"])
        procs.append(("nginx", start([NGINX, "-c", proxy_conf, "-p", os.path.join(tmp, "proxy")], PROXY_CORE)))
        gh = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "target", "release", "gatehouse"))
        env = dict(os.environ, RUST_LOG="error")
        # Redis for the shared-store route, on the load core (it is part of the environment).
        procs.append(("redis", start(["redis-server", "--port", str(PORTS["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], LOAD_CORE)))
        time.sleep(0.5)
        minimal = os.environ.get("MINIMAL_BIN", os.path.join(ROOT, "target", "release", "examples", "minimal_proxy"))
        procs.append(("pingora-minimal", start([minimal, f"127.0.0.1:{PORTS['pingora']}", f"127.0.0.1:{PORTS['origin']}"], PROXY_CORE, env=env)))
        procs.append(("gatehouse", start([gh, "run", "-c", os.path.join(ROOT, "perf", "gatehouse-perf.yaml")], PROXY_CORE, env=env)))
        # The passthrough configuration with the access log on (stdout, to a file here: it stands
        # for journald or a pipe), to measure what logging costs.
        with open(os.path.join(ROOT, "perf", "gatehouse-perf.yaml")) as f:
            logged = (f.read().replace("access_log: off", "access_log: stdout")
                      .replace(f"127.0.0.1:{PORTS['gatehouse']}", f"127.0.0.1:{PORTS['gatehouse_logged']}")
                      .replace(f"127.0.0.1:{PORTS['admin']}", f"127.0.0.1:{PORTS['admin_logged']}")
                      .replace("/tmp/gatehouse-perf.pid", "/tmp/gatehouse-perf-logged.pid")
                      .replace("/tmp/gatehouse-perf-upgrade.sock", "/tmp/gatehouse-perf-logged-upgrade.sock")
                      .replace("  dir: policies", f"  dir: {os.path.join(ROOT, 'perf', 'policies')}"))
        logged_conf = os.path.join(tmp, "gatehouse-logged.yaml")
        with open(logged_conf, "w") as f:
            f.write(logged)
        access_log = open(os.path.join(tmp, "access.log"), "wb")
        procs.append(("gatehouse-logged", start([gh, "run", "-c", logged_conf], PROXY_CORE, env=env, stdout=access_log)))
        procs.append(("gatehouse-redis", start([gh, "run", "-c", os.path.join(ROOT, "perf", "gatehouse-perf-redis.yaml")], PROXY_CORE, env=env)))
        wait_port(PORTS["nginx"])
        wait_port(PORTS["gatehouse"], "/pass/")
        wait_port(PORTS["gatehouse_redis"], "/rl/")
        wait_port(PORTS["gatehouse_logged"], "/pass/")
        wait_port(PORTS["pingora"])
        by_name = dict(procs)
        key = "Ocp-Apim-Subscription-Key: perf-key-0001"
        token = hs256_token(b"perf-secret-of-at-least-thirty-two-bytes", {"aud": "perf", "sub": "perf", "exp": int(time.time()) + 86400})
        auth = f"Authorization: Bearer {token}"
        targets = [
            ("origin", PORTS["origin"], "/pass/", None, ()),
            ("nginx", PORTS["nginx"], "/pass/", by_name["nginx"], ()),
            ("pingora-minimal", PORTS["pingora"], "/pass/", by_name["pingora-minimal"], ()),
            ("gatehouse-passthrough", PORTS["gatehouse"], "/pass/", by_name["gatehouse"], ()),
            ("gatehouse-passthrough-logged", PORTS["gatehouse_logged"], "/pass/", by_name["gatehouse-logged"], ()),
            ("gatehouse-ratelimit-memory", PORTS["gatehouse"], "/rl/", by_name["gatehouse"], ()),
            ("gatehouse-ratelimit-redis", PORTS["gatehouse_redis"], "/rl/", by_name["gatehouse-redis"], ()),
            ("gatehouse-typical", PORTS["gatehouse"], "/typ/x", by_name["gatehouse"], (key,)),
            ("gatehouse-typical-redis", PORTS["gatehouse_redis"], "/typ/x", by_name["gatehouse-redis"], (key,)),
            ("gatehouse-cache-hit", PORTS["gatehouse"], "/cache/x", by_name["gatehouse"], ()),
            ("gatehouse-jwt-body", PORTS["gatehouse"], "/jwt/json", by_name["gatehouse"], (auth,)),
        ]
        if TARGETS:
            keep = set(TARGETS.split(",")) | {"nginx", "pingora-minimal", "gatehouse-passthrough"}
            targets = [t for t in targets if t[0] in keep]
        # Each route must answer 200 before it is measured.
        for name, port, path, _, headers in targets:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=dict(h.split(": ", 1) for h in headers))
            status = urllib.request.urlopen(req, timeout=5).status
            if status != 200:
                sys.exit(f"{name}: {path} answered {status}")
        idle_rss = {n: rss_kb(pids_of(p)) for n, p in procs if n != "redis"}
        results = {}
        for conns in CONNS:
            for rnd in range(ROUNDS):
                for name, port, path, proc, headers in targets:
                    pids = pids_of(proc) if proc else []
                    t0 = cpu_ticks(pids)
                    r = wrk(port, path, conns, headers)
                    ticks = cpu_ticks(pids) - t0
                    r["cpu_us_per_req"] = (ticks * 1e6 / CLK_TCK / r["requests"]) if proc and r["requests"] else None
                    r["rss_kb"] = rss_kb(pids) if proc else None
                    results.setdefault(f"{name}@c{conns}", []).append(r)
                    print(f"  round {rnd + 1} c={conns} {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']} ms, cpu/req {r['cpu_us_per_req']}", flush=True)
        summary = summarize(results)
        out_dir = os.path.join(ROOT, "perf", "out")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, time.strftime("%Y%m%d-%H%M%S") + ".json")
        with open(out, "w") as f:
            json.dump({"rounds": ROUNDS, "duration_s": DURATION, "pinning": {"load_and_origin": LOAD_CORE, "proxy": PROXY_CORE},
                       "idle_rss_kb": idle_rss, "summary": summary, "raw": results}, f, indent=2)
        print_table(summary)
        print(f"\nwritten: {out}")
        ratios = {k: {r: v[r] for r in RATIOS if v.get(r) is not None} for k, v in summary.items()}
        noise = round_noise(results)
        if SAVE_BASELINE:
            with open(BASELINE, "w") as f:
                json.dump({"note": "ratios (medians of rounds) from one perf/run.sh run and their spread between rounds; "
                                   "COMPARE=1 reports gatehouse's rows and flags a CPU or throughput ratio that got "
                                   "worse by more than max(10%, the sum of its spreads in both runs); p99 is reported only",
                           "written": time.strftime("%Y-%m-%d %H:%M:%S"), "ratios": ratios, "noise": noise},
                          f, indent=2, sort_keys=True)
            print(f"baseline written: {BASELINE}")
        if COMPARE:
            sys.exit(compare(ratios, noise))
    finally:
        for _, p in procs:
            p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


# Ratios kept in the baseline; for cpu_* and p99_* higher is worse, for rps_* lower is worse.
RATIOS = ("rps_vs_nginx", "cpu_vs_nginx", "p99_vs_nginx", "cpu_vs_minimal", "cpu_vs_passthrough", "rps_vs_passthrough")
# Rows that are references, not gatehouse: they are never a gatehouse regression (nginx getting
# slower in one run makes gatehouse's ratio to it look better, not worse, and is not flagged).
REFERENCES = ("origin", "nginx", "pingora-minimal")
MIN_THRESHOLD = 0.10


def round_noise(results):
    """Per row and ratio, the spread of that ratio between this run's rounds ((max - min) /
    median): the noise a change must clear before it means anything."""
    noise = {}
    rounds = max((len(v) for v in results.values()), default=0)
    # Each round summarised on its own (its ratios against the same round's references).
    per_round = [summarize({k: [v[i]] for k, v in results.items() if len(v) > i}) for i in range(rounds)]
    for key in results:
        for r in RATIOS:
            xs = [p[key][r] for p in per_round if p.get(key, {}).get(r) is not None]
            m = median(xs)
            if len(xs) > 1 and m:
                noise.setdefault(key, {})[r] = (max(xs) - min(xs)) / m
    return noise


def compare(ratios, noise):
    """Report each gatehouse ratio against the baseline, direction-aware (only a ratio that got
    worse can regress) and against the noise measured between rounds: a change is flagged only
    when it exceeds max(10%, this run's spread + the baseline run's spread) of that ratio. CPU
    and throughput ratios decide the exit status; p99 ratios are reported only."""
    try:
        with open(BASELINE) as f:
            doc = json.load(f)
        base, base_noise = doc["ratios"], doc.get("noise", {})
    except (OSError, KeyError, ValueError) as e:
        print(f"no usable baseline at {BASELINE}: {e}")
        return 2
    bad = []
    for key, old in sorted(base.items()):
        if key.split("@")[0] in REFERENCES:
            continue
        for r, ov in old.items():
            nv = ratios.get(key, {}).get(r)
            if nv is None or not ov:
                continue
            # Two medians each off by up to their run's spread: the bound is the sum of both.
            bound = max(MIN_THRESHOLD, noise.get(key, {}).get(r, 0.0) + base_noise.get(key, {}).get(r, 0.0))
            change = (nv - ov) / ov if not r.startswith("rps") else (ov - nv) / ov  # > 0: worse
            worse = change > bound
            # A p99 over a few seconds is one or two events: reported, never failing.
            tail = r.startswith("p99")
            if worse or os.environ.get("VERBOSE") == "1":
                mark = ("WORSE" if tail else "REGRESSED") if worse else "ok"
                print(f"  {mark:9} {key:36} {r:20} baseline {ov:6.2f} now {nv:6.2f}"
                      f" ({change:+.0%} worse; bound {bound:.0%}){' (tail: reported only)' if worse and tail else ''}")
            if worse and not tail:
                bad.append((key, r))
    print(f"\n{len(bad)} gatehouse ratio(s) got worse beyond their noise" if bad
          else "\nno gatehouse CPU or throughput ratio got worse beyond its noise (max of 10% and the spreads between rounds)")
    return 1 if bad else 0


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def summarize(results):
    s = {}
    for key, runs in results.items():
        s[key] = {k: median([r[k] for r in runs]) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_kb")}
        s[key]["non2xx"] = sum(r["non2xx"] for r in runs)
    for key in list(s):
        name, conns = key.split("@")
        for ref_name, tag in (("pingora-minimal", "minimal"), ("gatehouse-passthrough", "passthrough")):
            ref = s.get(f"{ref_name}@{conns}")
            if ref and name != ref_name and s[key]["cpu_us_per_req"] and ref["cpu_us_per_req"]:
                s[key][f"cpu_vs_{tag}"] = s[key]["cpu_us_per_req"] / ref["cpu_us_per_req"]
            if ref and name != ref_name and ref["rps"] and tag == "passthrough":
                s[key]["rps_vs_passthrough"] = s[key]["rps"] / ref["rps"]
        ref = s.get(f"nginx@{conns}")
        if ref and name != "nginx":
            s[key]["rps_vs_nginx"] = s[key]["rps"] / ref["rps"] if ref["rps"] else None
            if s[key]["cpu_us_per_req"] and ref["cpu_us_per_req"]:
                s[key]["cpu_vs_nginx"] = s[key]["cpu_us_per_req"] / ref["cpu_us_per_req"]
            if s[key]["p99_ms"] and ref["p99_ms"]:
                s[key]["p99_vs_nginx"] = s[key]["p99_ms"] / ref["p99_ms"]
    return s


def print_table(s):
    print(f"\n{'target':34} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7} {'RSS MB':>7} {'rps/ngx':>8} {'cpu/ngx':>8} {'cpu/min':>8} {'cpu/pass':>8} {'p99/ngx':>8}")
    for key, v in s.items():
        f = lambda x, spec: format(x, spec) if x is not None else "-"
        print(f"{key:34} {f(v['rps'], '8.0f')} {f(v['p50_ms'], '7.3f')} {f(v['p99_ms'], '7.3f')} {f(v['cpu_us_per_req'], '7.1f')} "
              f"{f(v['rss_kb'] and v['rss_kb'] / 1024, '7.1f')} {f(v.get('rps_vs_nginx'), '8.2f')} {f(v.get('cpu_vs_nginx'), '8.2f')} "
              f"{f(v.get('cpu_vs_minimal'), '8.2f')} {f(v.get('cpu_vs_passthrough'), '8.2f')} {f(v.get('p99_vs_nginx'), '8.2f')}")


if __name__ == "__main__":
    main()
