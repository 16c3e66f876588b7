#!/usr/bin/env python3
"""Instructions per request (valgrind's callgrind), side by side: the minimal Pingora proxy and
gatehouse's passthrough and typical routes (and the typical route with a Redis store the script
starts), each behind the same nginx origin.

Instruction counts are repeatable whatever else the machine is doing, so they show what a change
to the hot path costs without the noise of a timed run. Each target runs twice under callgrind,
with N1 and N2 keep-alive requests; per request = (I(N2) - I(N1)) / (N2 - N1), which removes
start-up and shutdown. Writes perf/out/callgrind-<timestamp>.json and keeps the profiles
(perf/out/callgrind.<target>.<n>.out); `perf/callgrind_diff.py A B` shows, per function, what
the requests between two of them cost.
  perf/callgrind.sh                 # N1=300, N2=1300
  GATEHOUSE_BIN=path LABEL=before perf/callgrind.py   # another build (before/after a change)
  TARGETS=pingora-minimal,gatehouse-passthrough perf/callgrind.py   # a subset
"""
import http.client, json, os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the perf suite's helpers: nginx config, ports)

ROOT = run.ROOT
OUT = os.path.join(ROOT, "perf", "out")
N1 = int(os.environ.get("N1", "300"))
N2 = int(os.environ.get("N2", "1300"))


def requests(port, path, headers, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"{path}: status {r.status}")
    c.close()


def wait(port, path, headers, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        try:
            requests(port, path, headers, 1)
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
    sys.exit(f"port {port} did not answer")


def ready(admin, timeout=120):
    """Wait until gatehouse's admin listener says ready: start-up work (the store's first
    connection, the wait for every listener to be bound) is over, so none of it is counted
    among the requests' instructions (it overlapped the N1 run and not the N2 one otherwise)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
            c.request("GET", "/readyz")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    sys.exit(f"admin port {admin} never said ready")


def instructions(cmd, port, path, headers, n, out_file, admin=None, stdout=None):
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *cmd],
                         stdout=out, stderr=subprocess.DEVNULL)
    try:
        if admin:
            ready(admin)
        wait(port, path, headers)
        requests(port, path, headers, n - 1)
    finally:
        p.send_signal(signal.SIGINT)  # Pingora: fast shutdown
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if stdout:
            out.close()
    with open(out_file) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit(f"no totals in {out_file}")


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="gatehouse-callgrind-")
    ports = run.PORTS
    origin_conf = run.nginx_conf(os.path.join(tmp, "origin"), ports["origin"],
                                 f'server {{ listen 127.0.0.1:{ports["origin"]}; location / {{ return 200 "hello from origin\\n"; }}'
                                 f' location /json {{ default_type application/json; return 200 \'{run.json_2k()}\'; }} }}')
    origin = subprocess.Popen([run.NGINX, "-c", origin_conf, "-p", os.path.join(tmp, "origin")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gh = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "target", "release", "gatehouse"))
    label = os.environ.get("LABEL", "")
    minimal = os.environ.get("MINIMAL_BIN", os.path.join(ROOT, "target", "release", "examples", "minimal_proxy"))
    conf = os.path.join(ROOT, "perf", "gatehouse-perf.yaml")
    key = {"Ocp-Apim-Subscription-Key": "perf-key-0001"}
    token = run.hs256_token(b"perf-secret-of-at-least-thirty-two-bytes",
                            {"aud": "perf", "sub": "perf", "exp": int(time.time()) + 86400})
    jwt = {"Authorization": f"Bearer {token}"}
    # The same configuration with the access log on, written to a file (the shipped default
    # writes it to stdout; a file stands for journald or a pipe).
    logged_conf = os.path.join(ROOT, "perf", "gatehouse-perf-logged.yaml")
    with open(conf) as f, open(logged_conf + ".tmp", "w") as g:
        g.write(f.read().replace("access_log: off", "access_log: stdout"))
    os.replace(logged_conf + ".tmp", logged_conf)
    access_log = os.path.join(tmp, "access.log")
    # The passthrough configuration with Pingora's work stealing on (one thread: a multi-thread
    # tokio runtime with one worker instead of a current-thread one); run when TARGETS names it.
    steal_conf = os.path.join(tmp, "gatehouse-steal.yaml")
    with open(conf) as f, open(steal_conf, "w") as g:
        text = f.read()
        if "work_stealing: false" not in text:
            sys.exit("perf/gatehouse-perf.yaml no longer sets work_stealing: false")
        g.write(text.replace("work_stealing: false", "work_stealing: true")
                .replace("  dir: policies", f"  dir: {os.path.join(ROOT, 'perf', 'policies')}"))
    targets = [
        ("pingora-minimal", [minimal, f"127.0.0.1:{ports['pingora']}", f"127.0.0.1:{ports['origin']}"], ports["pingora"], "/pass/", {}, None),
        ("gatehouse-passthrough", [gh, "run", "-c", conf], ports["gatehouse"], "/pass/", {}, ports["admin"]),
        ("gatehouse-passthrough-logged", [gh, "run", "-c", logged_conf], ports["gatehouse"], "/pass/", {}, ports["admin"]),
        ("gatehouse-typical", [gh, "run", "-c", conf], ports["gatehouse"], "/typ/x", key, ports["admin"]),
        ("gatehouse-typical-redis", [gh, "run", "-c", os.path.join(ROOT, "perf", "gatehouse-perf-redis.yaml")],
         ports["gatehouse_redis"], "/typ/x", key, ports["admin_redis"]),
        ("gatehouse-typical-redis-lease", [gh, "run", "-c", os.path.join(ROOT, "perf", "gatehouse-perf-redis-lease.yaml")],
         ports["gatehouse_redis"], "/typ/x", key, ports["admin_redis"]),
        ("gatehouse-passthrough-steal", [gh, "run", "-c", steal_conf], ports["gatehouse"], "/pass/", {}, ports["admin"]),
        # validate-jwt (HS256) and the 2 KiB JSON response rewritten by set-body; against the
        # passthrough route fetching the same JSON (`gatehouse-passthrough-json`).
        ("gatehouse-jwt-body", [gh, "run", "-c", conf], ports["gatehouse"], "/jwt/json", jwt, ports["admin"]),
        ("gatehouse-passthrough-json", [gh, "run", "-c", conf], ports["gatehouse"], "/pass/json", {}, ports["admin"]),
    ]
    optional = {"gatehouse-passthrough-steal", "gatehouse-jwt-body", "gatehouse-passthrough-json"}
    if os.environ.get("TARGETS"):  # a subset, e.g. TARGETS=pingora-minimal,gatehouse-passthrough
        keep = set(os.environ["TARGETS"].split(","))
        targets = [t for t in targets if t[0] in keep]
    else:
        targets = [t for t in targets if t[0] not in optional]
    redis = subprocess.Popen(["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        run.wait_port(ports["origin"])
        for name, cmd, port, path, headers, admin in targets:
            counts = []
            for n in (N1, N2):
                out_file = os.path.join(OUT, f"callgrind.{name}{'.' + label if label else ''}.{n}.out")
                counts.append(instructions(cmd, port, path, headers, n, out_file, admin,
                                           access_log if name.endswith("-logged") else None))
            per = (counts[1] - counts[0]) / (N2 - N1)
            results[name] = round(per)
            print(f"{name:24} {per:10,.0f} instructions/request", flush=True)
    finally:
        origin.terminate()
        origin.wait()
        redis.terminate()
        redis.wait()
    base = results.get("pingora-minimal")
    if base:
        for name, v in results.items():
            print(f"{name:24} {v / base:6.2f}x minimal Pingora")
    passthrough = results.get("gatehouse-passthrough")
    if passthrough and "gatehouse-passthrough-logged" in results:
        print(f"passthrough-logged / passthrough {results['gatehouse-passthrough-logged'] / passthrough:6.2f}x")
    if passthrough and "gatehouse-typical-redis" in results:
        print(f"typical-redis / passthrough {results['gatehouse-typical-redis'] / passthrough:6.2f}x")
    if passthrough and "gatehouse-typical-redis-lease" in results:
        print(f"typical-redis-lease / passthrough {results['gatehouse-typical-redis-lease'] / passthrough:6.2f}x")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(OUT, f"callgrind-{stamp}.json"), "w") as f:
        json.dump({"n1": N1, "n2": N2, "instructions_per_request": results}, f, indent=2)


if __name__ == "__main__":
    main()
