#!/usr/bin/env python3
"""Failover scenario (see perf/failover.sh): steady load through a 2-member pool, then one origin
is killed (SIGKILL: its connections reset, its port refuses). Reported per route: requests,
client-visible failures (non-200 or transport error), and the window in which they happened.

Routes (one gatehouse, release build, one worker):
  /plain/  pool, no retry policy, breaker on connection failures, health check every 1 s
  /retry/  the same pool with <retry> around forward-request (idempotent GETs)
Targets (issue 5): zero client-visible failures on /retry/; breaker / health reaction within one
check interval.
"""
import http.client, json, os, shutil, signal, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
from run import wait_port  # noqa: E402
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PORTS = {"a": 18100, "b": 18101, "gatehouse": 18102, "admin": 18103}
BEFORE, AFTER = float(os.environ.get("BEFORE", "3")), float(os.environ.get("AFTER", "5"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))
CHECK_INTERVAL = 1.0

CONFIG = f"""
server:
  threads: 1
  work_stealing: false
  pid_file: {{tmp}}/gatehouse.pid
  upgrade_sock: {{tmp}}/upgrade.sock
listeners:
  - address: 127.0.0.1:{PORTS["gatehouse"]}
admin:
  address: 127.0.0.1:{PORTS["admin"]}
access_log: off
policies:
  dir: {{tmp}}/policies
backends:
  - id: a
    url: http://127.0.0.1:{PORTS["a"]}
    circuit_breaker: &cb
      rules:
        - name: down
          failure_condition: {{{{ count: 1, interval: 10s, error_reasons: [BackendConnectionFailure, Timeout], status_code_ranges: [{{{{ min: 502, max: 504 }}}}] }}}}
          trip_duration: 5s
  - id: b
    url: http://127.0.0.1:{PORTS["b"]}
    circuit_breaker: *cb
  - id: pool
    type: pool
    pool:
      services: [{{{{ id: a }}}}, {{{{ id: b }}}}]
    health_check: {{{{ path: /, interval: 1s, timeout: 500ms }}}}
apis:
  - {{{{ id: plain, path: plain, backend: pool, subscription_required: false, operations: [{{{{ id: any, method: GET, url_template: "/{{{{*rest}}}}" }}}}] }}}}
  - {{{{ id: retry, path: retry, backend: pool, subscription_required: false, operations: [{{{{ id: any, method: GET, url_template: "/{{{{*rest}}}}" }}}}] }}}}
"""

RETRY = """<policies><inbound><base /></inbound><backend>
<retry condition="@(context.LastError != null || context.Response.StatusCode >= 502)" count="2" interval="0" first-fast-retry="true">
<forward-request timeout="2" /></retry></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"""


def nginx(tmp, name, port):
    prefix = os.path.join(tmp, name)
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fcgi;
  uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{name}\\n"; }} }} }}
""")
    return subprocess.Popen(["taskset", "-c", "0", NGINX, "-c", conf, "-p", prefix],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def client(path, stop, results):
    conn = None
    while not stop.is_set():
        t = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", PORTS["gatehouse"], timeout=10)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            results.append((t, r.status))
        except Exception as e:
            results.append((t, f"error: {type(e).__name__}"))
            conn = None


def main():
    tmp = tempfile.mkdtemp(prefix="gatehouse-failover-")
    os.makedirs(f"{tmp}/policies/apis/retry", exist_ok=True)
    with open(f"{tmp}/policies/apis/retry/any.xml", "w") as f:
        f.write(RETRY)
    with open(f"{tmp}/gatehouse.yaml", "w") as f:
        f.write(CONFIG.format(tmp=tmp))
    origins = {n: nginx(tmp, n, PORTS[n]) for n in ("a", "b")}
    for n in ("a", "b"):
        wait_port(PORTS[n])
    gw = subprocess.Popen(["taskset", "-c", "1", f"{ROOT}/target/release/gatehouse", "run", "-c", f"{tmp}/gatehouse.yaml"],
                          stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/gatehouse.log", "w"))
    report = {}
    try:
        wait_port(PORTS["gatehouse"], "/plain/")
        for route in ("/plain/", "/retry/"):
            # Both origins up again for each route.
            if origins["a"].poll() is not None:
                origins["a"] = nginx(tmp, "a", PORTS["a"])
                wait_port(PORTS["a"])
                time.sleep(CHECK_INTERVAL * 6)  # breaker trip (5 s) and health check recover
            stop, results = threading.Event(), []
            threads = [threading.Thread(target=client, args=(route, stop, results)) for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(BEFORE)
            killed = time.time()
            os.killpg(origins["a"].pid, signal.SIGKILL)
            origins["a"].wait()
            time.sleep(AFTER)
            stop.set()
            for t in threads:
                t.join()
            failures = [(t - killed, s) for t, s in results if s != 200]
            reactions = {}
            for line in open(f"{tmp}/gatehouse.log"):
                for what, text in (("breaker_open_s", "backend `a`: circuit breaker tripped"),
                                   ("unhealthy_s", "backend `a`: health check failing")):
                    if text in line and what not in reactions:
                        ts = line[1:line.index("Z")]
                        at = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0" + ts[19:])
                        if at >= killed - 0.01:
                            reactions[what] = round(at - killed, 3)
            after = [s for t, s in results if t >= killed]
            report[route] = {
                "requests": len(results),
                "requests_after_kill": len(after),
                "failures": len(failures),
                "first_failure_s": round(min(f[0] for f in failures), 3) if failures else None,
                "last_failure_s": round(max(f[0] for f in failures), 3) if failures else None,
                "failure_kinds": sorted({str(f[1]) for f in failures}),
                "reaction_after_kill": reactions,
            }
        m = urllib.request.urlopen(f"http://127.0.0.1:{PORTS['admin']}/metrics", timeout=2).read().decode()
        report["metrics"] = [l for l in m.splitlines()
                             if l.startswith("gatehouse_backend_") and "_duration_" not in l]
    finally:
        gw.send_signal(signal.SIGINT)
        gw.wait()
        for p in origins.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    print(json.dumps(report, indent=2))
    out = os.path.join(ROOT, "perf", "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, time.strftime("failover-%Y%m%dT%H%M%S.json")), "w") as f:
        json.dump(report, f, indent=2)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
