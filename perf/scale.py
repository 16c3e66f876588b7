#!/usr/bin/env python3
"""Memory and start-up against the size of the configuration: gatehouse with N APIs x 10
operations (the global policy of `benches/gateway.rs`: a rate limit, three set-header and a
choose; no API or operation policy unless OWN_POLICIES=1 gives every operation one), for each N
in SIZES. Per size: time from start to /readyz, idle RSS (VmRSS), RSS after REQUESTS requests
over 100 operations spread across the APIs (one keep-alive client, after one warm-up call
each), and their wall time and the gateway's CPU per
request (a coarse check that cost stays flat with size; instructions: cargo bench --bench gateway).
  perf/scale.sh                                   # SIZES=1,1000,10000
  GATEHOUSE_BIN=path SIZES=1000 python3 perf/scale.py
"""
import http.client, json, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the perf suite's helpers)
import callgrind  # noqa: E402  (its wait for /readyz)

ROOT = run.ROOT
SIZES = [int(x) for x in os.environ.get("SIZES", "1,1000,10000").split(",")]
REQUESTS = int(os.environ.get("REQUESTS", "5000"))
OWN_POLICIES = os.environ.get("OWN_POLICIES") == "1"
# Seconds between ready and the idle reading: jemalloc returns the start-up compile's freed pages
# to the OS over its decay time (10 s), from its background thread.
IDLE_WAIT = float(os.environ.get("IDLE_WAIT", "12"))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "target", "release", "gatehouse"))
PORT, ADMIN, ORIGIN = 18102, 18103, 18100

GLOBAL = """<policies><inbound>
  <rate-limit-by-key calls="1000000000" renewal-period="60" counter-key="@(context.Request.IpAddress)" />
  <set-header name="X-A" exists-action="override"><value>a</value></set-header>
  <set-header name="X-B" exists-action="override"><value>@(context.Request.Method)</value></set-header>
  <set-header name="X-C" exists-action="override"><value>@(context.Operation.Id)</value></set-header>
  <choose><when condition="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tier&quot;, &quot;&quot;) == &quot;gold&quot;)">
    <set-header name="X-Gold" exists-action="override"><value>1</value></set-header></when></choose>
</inbound><backend><forward-request /></backend><outbound /><on-error /></policies>"""

OP_POLICY = """<policies><inbound><base /><set-header name="X-Op" exists-action="override"><value>op</value></set-header>
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"""


def config(dir, apis):
    os.makedirs(os.path.join(dir, "policies", "apis"), exist_ok=True)
    y = [f"server:\n  threads: 1\n  pid_file: {dir}/pid\n  upgrade_sock: {dir}/upgrade.sock\n"
         f"listeners:\n  - address: 127.0.0.1:{PORT}\nadmin:\n  address: 127.0.0.1:{ADMIN}\n"
         "access_log: off\npolicies:\n  dir: policies\napis:\n"]
    for a in range(apis):
        y.append(f"  - id: api{a}\n    path: svc{a}/v1\n    service_url: http://127.0.0.1:{ORIGIN}\n"
                 "    subscription_required: false\n    operations:\n")
        for o in range(10):
            y.append(f"      - id: op{o}\n        method: GET\n        url_template: /res{o}/{{id}}/items\n")
            if OWN_POLICIES:
                d = os.path.join(dir, "policies", "apis", f"api{a}")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, f"op{o}.xml"), "w") as f:
                    f.write(OP_POLICY)
    with open(os.path.join(dir, "gatehouse.yaml"), "w") as f:
        f.write("".join(y))
    with open(os.path.join(dir, "policies", "global.xml"), "w") as f:
        f.write(GLOBAL)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    tmp = tempfile.mkdtemp(prefix="gatehouse-scale-")
    origin_conf = run.nginx_conf(os.path.join(tmp, "origin"), ORIGIN,
                                 f'server {{ listen 127.0.0.1:{ORIGIN}; location / {{ return 200 "ok\\n"; }} }}')
    origin = subprocess.Popen([run.NGINX, "-c", origin_conf, "-p", os.path.join(tmp, "origin")])
    rows = []
    try:
        run.wait_port(ORIGIN)
        for n in SIZES:
            d = os.path.join(tmp, f"c{n}")
            config(d, n)
            t0 = time.time()
            p = subprocess.Popen([BIN, "run", "-c", os.path.join(d, "gatehouse.yaml")],
                                 env=dict(os.environ, RUST_LOG="error"), stdout=subprocess.DEVNULL)
            try:
                callgrind.ready(ADMIN, timeout=300)  # exits when it never says ready
                start_s = time.time() - t0
                time.sleep(IDLE_WAIT)
                idle = rss_kb(p.pid)
                c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                # 100 operations spread over the whole configuration (first, middle, last APIs),
                # each called once first (its metric handles are made on first use), then
                # REQUESTS calls over them: the steady cost of a request, at this size.
                spread = [(k * n // 100, k % 10) for k in range(100)]

                def call(i):
                    api, op = spread[i % len(spread)]
                    c.request("GET", f"/svc{api}/v1/res{op}/{i}/items")
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        sys.exit(f"{n} APIs: status {r.status}")
                for i in range(len(spread)):
                    call(i)
                cpu0 = cpu_ticks(p.pid)
                t1 = time.time()
                for i in range(REQUESTS):
                    call(i)
                c.close()
                wall_us = (time.time() - t1) * 1e6 / REQUESTS
                cpu_us = (cpu_ticks(p.pid) - cpu0) * 1e6 / os.sysconf("SC_CLK_TCK") / REQUESTS
                loaded = rss_kb(p.pid)
                rows.append({"apis": n, "operations": n * 10, "ready_s": round(start_s, 2),
                             "idle_rss_mb": round(idle / 1024, 1), "rss_after_requests_mb": round(loaded / 1024, 1),
                             "request_wall_us": round(wall_us, 1), "gateway_cpu_us_per_request": round(cpu_us, 1)})
                print(f"{n:6} APIs x 10: ready in {start_s:5.2f} s, idle RSS {idle / 1024:6.1f} MB, "
                      f"after {REQUESTS} requests {loaded / 1024:6.1f} MB; per request {wall_us:6.1f} us "
                      f"(gateway CPU {cpu_us:5.1f} us)", flush=True)
            finally:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    finally:
        origin.terminate()
        origin.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    out = os.path.join(ROOT, "perf", "out")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, time.strftime("scale-%Y%m%d-%H%M%S") + ".json")
    with open(path, "w") as f:
        json.dump({"own_policies": OWN_POLICIES, "rows": rows}, f, indent=2)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
