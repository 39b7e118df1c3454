#!/usr/bin/env python3
"""invoke.py - blocking-invoke throughput and latency of a real Gust cluster,
against an nginx static-JSON baseline measured in the same run.

    sudo PYTHONPATH=tests/lib GUST_BUILD_DIR=build GUST_SOURCE_DIR=. python3 bench/invoke.py
    ... bench/invoke.py --quick          # one short run, for smoke-testing
    ... bench/invoke.py --runs 5         # more runs (the median is reported)
    ... bench/invoke.py --transport insecure   # daemons on plain tcp:// (the
                                               # cost of mutual TLS: run both, alternating)

What runs: a Cluster (tests/lib/cluster.py: etcd, Redis, gust-scheduler, one
gust-invoker, gust-gateway with 2 threads), a python:3 and a nodejs:20 "hello"
action, and nginx (2 workers, `return 200 '{"payload":"hello world"}'`). Each is
driven by wrk with bench/post.lua (POST of a small JSON body with an
Authorization header) at 1 connection (-t1 -c1) and 64 connections (-t2 -c64).
Runs are interleaved (nginx, python, nodejs, then again) so drift on a shared
machine hits every configuration alike.

Each wrk run is checked: socket errors and non-2xx/3xx answers reported by wrk,
and, for Gust, that the gateway's success-activation counter moved by exactly
the number of requests wrk completed (a 202 "still running" or any non-success
activation is caught here). A run with errors is flagged and left out of the
median; if every run of a configuration has errors the median of all is shown
with a "!" mark.

While wrk runs, CPU time is sampled from /proc for every process of interest
(gateway, scheduler, invoker, its sandboxes, redis, etcd, nginx, wrk), and the
gateway/scheduler/invoker latency histograms are diffed, so the report can say
where the time goes. Everything started here is stopped on exit, Ctrl-C or
SIGTERM: nginx through its pid file, the cluster through its context manager.

Standard library only, plus the wrk and nginx binaries.
"""
import argparse
import base64
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("GUST_SOURCE_DIR") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

LUA = os.path.join(HERE, "post.lua")

PY_CODE = 'def main(args):\n    return {"payload": "hello " + args.get("name","world")}\n'
JS_CODE = ('function main(args) {\n'
           '    return {payload: "hello " + (args.name || "world")};\n'
           '}\n')
ACTIONS = {  # config name -> (action name, kind, code)
    "python": ("hello", "python:3", PY_CODE),
    "nodejs": ("hellojs", "nodejs:20", JS_CODE),
}
CONNS = {  # connections -> wrk threads
    1: 1,
    64: 2,
}


class Interrupted(BaseException):
    pass


def on_sigterm(signum, frame):
    raise Interrupted("signal %d" % signum)


@contextlib.contextmanager
def no_interrupts():
    """Cleanup must not be cut short by a second Ctrl-C."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


class Shielded:
    """Wraps a context manager so that its __exit__ runs with Ctrl-C ignored."""

    def __init__(self, cm):
        self.cm = cm

    def __enter__(self):
        return self.cm.__enter__()

    def __exit__(self, *exc):
        with no_interrupts():
            return self.cm.__exit__(*exc)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --- nginx -------------------------------------------------------------------
class Nginx:
    CONF = """\
daemon off;
master_process on;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"payload":"hello world"}}';
        }}
    }}
}}
"""

    def __init__(self, base):
        self.dir = os.path.join(base, "nginx")
        os.makedirs(self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.pidfile = os.path.join(self.dir, "nginx.pid")
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def __enter__(self):
        with open(self.conf, "w") as f:
            f.write(self.CONF.format(dir=self.dir, port=self.port))
        logf = open(os.path.join(self.dir, "stderr.log"), "ab")
        # -e: the error log before the config is read (not /var/log/nginx).
        self.proc = subprocess.Popen(["nginx", "-e", os.path.join(self.dir, "error.log"),
                                      "-p", self.dir, "-c", self.conf],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        try:
            end = time.time() + 10
            while time.time() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx exited: " + self.errors())
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    if os.path.exists(self.pidfile):
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            raise RuntimeError("nginx did not start: " + self.errors())
        except BaseException:
            self.stop()
            raise

    def errors(self):
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f.read()[-2000:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        pid = None
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        if pid is None and self.proc is not None and self.proc.poll() is None:
            pid = self.proc.pid  # died before writing its pid file
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)  # fast shutdown of master and workers
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None

    def __exit__(self, *exc):
        self.stop()
        return False


# --- /proc CPU sampling ------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_table():
    """pid -> (comm, ppid, utime+stime in ticks)"""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        r = s.rfind(")")
        comm = s[s.find("(") + 1:r]
        f = s[r + 2:].split()
        t[int(d)] = (comm, int(f[1]), int(f[11]) + int(f[12]))
    return t


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


def group_cpu(before, after, roots):
    """CPU seconds per group between two proc tables. roots: pid -> group name;
    a process belongs to the group of its nearest listed ancestor (itself
    included); the invoker's descendants are the 'sandboxes' group."""
    out = {}
    for pid, (comm, ppid, ticks) in after.items():
        g = None
        p, seen = pid, 0
        while p and seen < 64:
            if p in roots:
                g = roots[p]
                if g == "invoker" and p != pid:
                    g = "sandboxes"
                break
            p = after.get(p, (None, 0, 0))[1]
            seen += 1
        if g is None:
            continue
        prev = before.get(pid)
        d = ticks - (prev[2] if prev and prev[0] == comm else 0)
        out[g] = out.get(g, 0.0) + d / CLK_TCK
    return out


def thread_cpu(pid):
    """tid -> (thread name, ticks) for one process."""
    t = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return t
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        r = s.rfind(")")
        f = s[r + 2:].split()
        t[int(tid)] = (s[s.find("(") + 1:r], int(f[11]) + int(f[12]))
    return t


# --- Prometheus text ---------------------------------------------------------
def scrape(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    m = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            m[k] = float(v)
        except ValueError:
            pass
    return m


def hist_delta(before, after, name):
    """(count, mean_us, p50_us, p99_us) of a histogram between two scrapes;
    percentiles are interpolated within the (coarse) buckets."""
    buckets = []
    for k, v in after.items():
        mm = re.match(re.escape(name) + r'_bucket\{le="([^"]+)"\}$', k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            buckets.append((le, v - before.get(k, 0.0)))
    if not buckets:
        return None
    buckets.sort()
    cnt = after.get(name + "_count", 0) - before.get(name + "_count", 0)
    s = after.get(name + "_sum", 0) - before.get(name + "_sum", 0)
    if cnt <= 0:
        return (0, None, None, None)

    def pct(q):
        target = q * cnt
        lo_le, lo_c = 0.0, 0.0
        for le, c in buckets:
            if c >= target:
                if le == float("inf"):
                    return lo_le * 1e6
                frac = (target - lo_c) / (c - lo_c) if c > lo_c else 1.0
                return (lo_le + frac * (le - lo_le)) * 1e6
            lo_le, lo_c = le, c
        return None

    return (int(cnt), s / cnt * 1e6, pct(0.5), pct(0.99))


# --- wrk ---------------------------------------------------------------------
def run_wrk(url, conns, duration, auth_header):
    threads = CONNS[conns]
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
            "-s", LUA, url]
    env = dict(os.environ)
    env["BENCH_AUTH"] = auth_header or ""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        out, _ = p.communicate(timeout=duration + 60)
    except BaseException:
        p.kill()
        p.wait()
        raise
    out = out.decode(errors="replace")
    m = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (rc %s):\n%s" % (p.returncode, out))
    r = json.loads(m.group(1))
    r["argv"] = " ".join(argv)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = {k[4:]: r[k] for k in ("err_connect", "err_read", "err_write",
                                          "err_timeout", "err_status") if r[k]}
    # wrk's own text, as a cross-check of the Lua summary
    nm = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if nm and int(nm.group(1)) and "status" not in r["errors"]:
        r["errors"]["non2xx"] = int(nm.group(1))
    sm = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sm:
        for k, v in zip(("connect", "read", "write", "timeout"), sm.groups()):
            if int(v) and k not in r["errors"]:
                r["errors"][k] = int(v)
    r["text"] = out
    return r


# --- the benchmark -----------------------------------------------------------
def basic(auth):
    return "Basic " + base64.b64encode(auth.encode()).decode()


def invoke_url(c, action):
    return "%s/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % (c.api_host, action)


def wait_key_visible(c, auth, timeout=10.0):
    """The gateway learns keys through its etcd watch, so a key written a moment
    ago can still get 401 for a short while. Wait for it (and say how long)."""
    t0 = time.time()
    while True:
        st, body, _ = c.api("GET", "/api/v1/namespaces/_/actions", None, auth)
        if st != 401:
            break
        if time.time() - t0 > timeout:
            raise RuntimeError("the gateway still refuses a new key after %.0f s: %s %s"
                               % (timeout, st, body))
        time.sleep(0.02)
    ms = (time.time() - t0) * 1000
    if ms > 20:
        log("new key accepted by the gateway after %.0f ms (401 before that)" % ms)


def setup_actions(c, auth, configs):
    wait_key_visible(c, auth)
    for cfg in configs:
        if cfg == "nginx":
            continue
        name, kind, code = ACTIONS[cfg]
        st, body, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name,
                            {"exec": {"kind": kind, "code": code}}, auth)
        if st != 200:
            raise RuntimeError("creating %s (%s): %s %s" % (name, kind, st, body))
        for i in range(20):
            st, body, _ = c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true"
                                % name, {"name": "bench"}, auth)
            if st != 200 or body != {"payload": "hello bench"}:
                raise RuntimeError("invoking %s: %s %s" % (name, st, body))
        log("%s: created and answering %s" % (name, body))


def median(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (median reported)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of untimed wrk per config")
    ap.add_argument("--quick", action="store_true", help="one run of 3 s, 1 s warm-up")
    ap.add_argument("--only", default="nginx,python,nodejs",
                    help="comma list of configurations: nginx, python, nodejs")
    ap.add_argument("--conns", default="1,64", help="comma list of connection counts: 1, 64")
    ap.add_argument("--json", help="write every run's numbers to this file")
    ap.add_argument("--keep", action="store_true", help="keep the cluster's temp dir and logs")
    ap.add_argument("--transport", choices=("tls", "insecure"), default="tls",
                    help="nng between the daemons: mutual TLS (the default) or plain tcp:// "
                         "with insecure_transport")
    ap.add_argument("--threads", action="store_true",
                    help="also report per-thread CPU of the gust daemons")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.duration, a.warmup = 1, 3, 1
    configs = [x for x in a.only.split(",") if x]
    conns = [int(x) for x in a.conns.split(",") if x]
    for x in configs:
        if x != "nginx" and x not in ACTIONS:
            ap.error("unknown configuration " + x)
    for x in conns:
        if x not in CONNS:
            ap.error("connections must be among %s" % sorted(CONNS))
    for prog in ("wrk", "nginx"):
        if shutil.which(prog) is None:
            sys.exit("%s is not installed: apt-get install -y wrk nginx-light" % prog)

    from cluster import Cluster  # tests/lib; skips (exit 77) when not root

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C must work even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    inv_metrics_port = free_port()
    os.environ["GUST_INVOKER_METRICS_PORT"] = str(inv_metrics_port)  # read by gust-invoker

    base = tempfile.mkdtemp(prefix="gust-bench-nginx-")
    results = []  # dicts: config, conns, run, wrk numbers, errors, cpu, layers
    started = datetime.datetime.now().astimezone()
    try:
        with contextlib.ExitStack() as stack:
            nginx = stack.enter_context(Shielded(Nginx(base))) if "nginx" in configs else None
            cluster = Cluster("bench", gateway_threads=2, keep=a.keep, tls=a.transport == "tls")
            c = stack.enter_context(Shielded(cluster))
            log("cluster up in %s (gateway %s, nng %s)" % (c.dir, c.api_host, a.transport))
            c.create_namespace("guest")
            auth = c.create_key("guest")
            setup_actions(c, auth, configs)

            roots = {c.procs[n].p.pid: re.sub(r"\d+$", "", n) for n in c.procs}
            if nginx:
                roots[nginx.proc.pid] = "nginx"
            gw_m = c.api_host + "/metrics"
            sc_m = "http://127.0.0.1:%d/metrics" % c.sched_metrics
            # newer cluster.py gives each invoker a --metrics_port of its own;
            # older ones leave it to the environment variable set above.
            iv_port = (getattr(c, "inv_metrics", None) or [inv_metrics_port])[0]
            iv_m = "http://127.0.0.1:%d/metrics" % iv_port

            def target(cfg):
                if cfg == "nginx":
                    return nginx.url, basic(auth)
                return invoke_url(c, ACTIONS[cfg][0]), basic(auth)

            # warm-up: untimed, at every connection count, so the invoker has as
            # many warm sandboxes as the 64-connection runs will use.
            for cfg in configs:
                for n in conns:
                    url, hdr = target(cfg)
                    w = run_wrk(url, n, a.warmup, hdr)
                    log("warm-up %-6s c%-2d %8.0f req/s %s" % (cfg, n, w["rps"], w["errors"] or ""))

            for run in range(1, a.runs + 1):
                for cfg in configs:
                    for n in conns:
                        url, hdr = target(cfg)
                        gust = cfg != "nginx"
                        m0 = (scrape(gw_m), scrape(sc_m), scrape(iv_m)) if gust else None
                        roots_now = dict(roots)
                        t0 = proc_table()
                        mc0 = machine_cpu()
                        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        tpids = {g: c.procs[nm].p.pid for nm, g in (("gateway", "gateway"),
                                                              ("scheduler", "scheduler"),
                                                              ("invoker0", "invoker"))}
                        th0 = ({g: thread_cpu(pid) for g, pid in tpids.items()}
                               if a.threads and gust else None)
                        r = run_wrk(url, n, a.duration, hdr)
                        t1 = proc_table()
                        mc1 = machine_cpu()
                        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        th1 = ({g: thread_cpu(pid) for g, pid in tpids.items()}
                               if th0 is not None else None)
                        wall = r["duration_us"] / 1e6
                        cpu = group_cpu(t0, t1, roots_now)
                        # wrk has exited by t1: its CPU is in this process's
                        # children's resource usage.
                        cpu["wrk"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
                        cpu = {k: v / wall for k, v in cpu.items()}
                        tot, idle = mc1[0] - mc0[0], mc1[1] - mc0[1]
                        cpu["machine_busy"] = (1 - idle / tot) * os.cpu_count() if tot else None
                        if cpu["machine_busy"] is not None:
                            # whatever else ran on the machine meanwhile
                            cpu["other"] = max(0.0, cpu["machine_busy"] - sum(
                                v for k, v in cpu.items() if k != "machine_busy"))
                        rec = {"config": cfg, "conns": n, "run": run, "argv": r["argv"],
                               "rps": r["rps"], "p50_us": r["lat_p50"], "p90_us": r["lat_p90"],
                               "p99_us": r["lat_p99"], "max_us": r["lat_max"],
                               "requests": r["requests"], "errors": dict(r["errors"]),
                               "cpu_cores": cpu}
                        if th0 is not None:
                            rec["threads"] = {}
                            for g in th1:
                                ths = {}
                                for tid, (name, ticks) in th1[g].items():
                                    d = ticks - th0[g].get(tid, (name, 0))[1]
                                    ths[name] = ths.get(name, 0) + d / CLK_TCK / wall
                                rec["threads"][g] = ths
                        if gust:
                            m1 = (scrape(gw_m), scrape(sc_m), scrape(iv_m))
                            ok = m1[0].get('gust_activations_total{status="success"}', 0) - \
                                m0[0].get('gust_activations_total{status="success"}', 0)
                            bad = sum(m1[0].get(k, 0) - m0[0].get(k, 0) for k in m1[0]
                                      if k.startswith("gust_activations_total")
                                      and 'status="success"' not in k)
                            rec["activations_ok"] = int(ok)
                            # wrk may have cut off the last in-flight requests at the
                            # deadline, so up to `n` more successes than it counted.
                            if bad:
                                rec["errors"]["failed_activations"] = int(bad)
                            if ok < r["requests"]:
                                rec["errors"]["missing_activations"] = int(r["requests"] - ok)
                            rec["layers"] = {
                                "gateway": hist_delta(m0[0], m1[0], "gust_http_request_duration_seconds"),
                                "scheduler": hist_delta(m0[1], m1[1], "gust_scheduler_activation_duration_seconds"),
                                "invoker": hist_delta(m0[2], m1[2], "gust_activation_duration_seconds"),
                            }
                            rec["invoker_starts"] = {
                                k: m1[2].get(k, 0) - m0[2].get(k, 0) for k in m1[2]
                                if k.startswith("gust_invoker_starts_total")}
                        results.append(rec)
                        log("run %d %-6s c%-2d %9.0f req/s  p50 %7.0f us  p99 %8.0f us  %s" % (
                            run, cfg, n, rec["rps"], rec["p50_us"], rec["p99_us"],
                            ("ERRORS " + json.dumps(rec["errors"])) if rec["errors"] else "ok"))
            if a.keep:
                log("cluster logs kept in " + c.dir)
    except (KeyboardInterrupt, Interrupted) as e:
        log("interrupted (%s); everything started was stopped" % (str(e) or "Ctrl-C"))
        report(results, a, started, partial=True)
        sys.exit(130)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results, a, started)


def fmt_us(us):
    if us is None:
        return "-"
    return "%.0f µs" % us if us < 1000 else "%.2f ms" % (us / 1000)


def report(results, a, started, partial=False):
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started.isoformat(), "transport": a.transport,
                       "runs": a.runs, "duration": a.duration,
                       "results": results}, f, indent=1)
    if not results:
        return
    print()
    print("# Gust blocking invoke vs nginx, %s, %d run(s) x %d s, median%s" % (
        started.strftime("%Y-%m-%d %H:%M %Z"), a.runs, a.duration,
        " (INTERRUPTED, partial)" if partial else ""))
    print()
    print("binaries: %s; runtimes: %s" % (os.environ.get("GUST_BUILD_DIR", "(cluster.py default)"),
                                          SOURCE))
    print()
    print("| config | conns | req/s | p50 | p99 | req/s vs nginx | p50 vs nginx | runs with errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    keys = []
    for r in results:
        if (r["config"], r["conns"]) not in keys:
            keys.append((r["config"], r["conns"]))
    med = {}
    for k in keys:
        rs = [r for r in results if (r["config"], r["conns"]) == k]
        clean = [r for r in rs if not r["errors"]]
        use = clean or rs
        med[k] = {f: median([r[f] for r in use]) for f in ("rps", "p50_us", "p99_us")}
        med[k]["mark"] = "" if clean else "!"
        med[k]["bad"] = "%d of %d" % (len(rs) - len(clean), len(rs))
        if len(clean) < len(rs):
            errs = {}
            for r in rs:
                for e, v in r["errors"].items():
                    errs[e] = errs.get(e, 0) + v
            med[k]["bad"] += " " + json.dumps(errs)
    for k in keys:
        m = med[k]
        base = med.get(("nginx", k[1]))
        ratio = "%.3f×" % (m["rps"] / base["rps"]) if base and k[0] != "nginx" else "-"
        lat = "%.1f×" % (m["p50_us"] / base["p50_us"]) if base and k[0] != "nginx" else "-"
        print("| %s | %d | %s%.0f | %s | %s | %s | %s | %s |" % (
            k[0], k[1], m["mark"], m["rps"], fmt_us(m["p50_us"]), fmt_us(m["p99_us"]),
            ratio, lat, m["bad"]))
    print()
    print("Per layer (medians over runs of each layer's histogram, interpolated in its buckets;")
    print("gateway ⊃ scheduler→invoker round trip ⊃ invoker; mean / ~p50):")
    print()
    print("| config | conns | gateway mean / p50 | scheduler mean / p50 | invoker mean / p50 |")
    print("|---|---:|---:|---:|---:|")
    for k in keys:
        if k[0] == "nginx":
            continue
        rs = [r for r in results if (r["config"], r["conns"]) == k and r.get("layers")]
        cells = []
        for layer in ("gateway", "scheduler", "invoker"):
            hs = [r["layers"][layer] for r in rs if r["layers"].get(layer) and r["layers"][layer][0]]
            if not hs:
                cells.append("-")
                continue
            cells.append("%s / %s" % (fmt_us(median([h[1] for h in hs])),
                                        fmt_us(median([h[2] for h in hs]))))
        print("| %s | %d | %s |" % (k[0], k[1], " | ".join(cells)))
    print()
    print("CPU while wrk ran (cores, median over runs; 2.0 = both vCPUs busy):")
    print()
    groups = ["gateway", "scheduler", "invoker", "sandboxes", "redis", "etcd", "nginx", "wrk",
              "other", "machine_busy"]
    print("| config | conns | " + " | ".join(groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    for k in keys:
        rs = [r for r in results if (r["config"], r["conns"]) == k]
        cells = []
        for g in groups:
            v = median([r["cpu_cores"].get(g) or 0.0 for r in rs])
            cells.append("%.2f" % v)
        print("| %s | %d | %s |" % (k[0], k[1], " | ".join(cells)))
    ths = [r for r in results if r.get("threads")]
    if ths:
        print()
        print("Busiest threads of the gust daemons (cores, by thread name, per run):")
        for r in ths:
            for g, t in r["threads"].items():
                top = [x for x in sorted(t.items(), key=lambda x: -x[1]) if x[1] >= 0.005][:6]
                print("  %s c%d run %d %s: %s" % (r["config"], r["conns"], r["run"], g,
                                                  ", ".join("%s %.2f" % x for x in top) or "-"))
    print()
    print("wrk commands: " + "; ".join(sorted({re.sub(r" http\S+", " URL", r["argv"])
                                                for r in results})))


if __name__ == "__main__":
    main()
