#!/usr/bin/env python3
"""bench/cluster_scale.py - throughput of a CPU-bound action against the number
of invokers, on the multi-host harness (tests/cluster/netcluster.py: every
invoker its own host, a network namespace).

For each invoker count (1, 2, 3, 6 by default) a fresh cluster is built, ACTIONS
python actions that burn ~20 ms of CPU each (128 MB) are warmed, then CONC
closed-loop blocking callers (spread over the actions) run for SECS seconds
through both gateways; RUNS runs per point, the median (by calls/s) reported.
Reported: completed calls/s, p50/p99 latency, and the CPU each daemon kind used
(from /proc, children included: the sandboxes' runtimes are the invokers'
children), so it shows where the cores went.

Invokers are sized with --memory_mb: at 128 MB an invoker holds one 128 MB
sandbox, i.e. it is a one-core node (a python sandbox runs one call at a time),
so one invoker can use one core and N invokers N cores - up to the machine's
cores. Work spreads because an action's home invoker is full once its one
sandbox is busy, and the scheduler places the next call on another invoker.
At the default 2048 MB one invoker holds 16 sandboxes and takes every core of
this machine by itself: there is nothing to show then.

    bench/cluster_scale.py [--invokers 1,2,3,6] [--secs 12] [--conc 12] [--runs 3]
                           [--memory_mb 128] [--actions 1] [--out FILE]

This machine has 2 vCPUs: past 2 busy invokers there is no more CPU to give,
and the table says so rather than hiding it.
"""
import argparse
import concurrent.futures
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
from netcluster import NetCluster, http  # noqa: E402

BURN = ("import time\n"
        "def main(a):\n"
        "    end = time.process_time() + a.get('ms', 20) / 1000.0\n"
        "    n = 0\n"
        "    while time.process_time() < end:\n"
        "        n += 1\n"
        "    return {'n': n}\n")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of_tree(pid):
    """utime+stime of pid and its waited-for children (cutime/cstime), plus
    live descendants, in seconds."""
    total = 0.0
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
            kids.setdefault(int(st[1]), []).append((int(d), st))
        except OSError:
            continue
    stack = [pid]
    seen = set()
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in st[11:15]) / TICK
    except OSError:
        return 0.0
    while stack:
        p = stack.pop()
        for cpid, cst in kids.get(p, []):
            if cpid in seen:
                continue
            seen.add(cpid)
            total += sum(int(x) for x in cst[11:15]) / TICK
            stack.append(cpid)
    return total


def run(n, secs, conc, ms, memory_mb, nact):
    with NetCluster("scale%d" % n, invokers=n, log_level="warn", memory_mb=memory_mb, triggers=0,
                    kafka=False) as c:
        c.create_namespace("guest")
        auth = c.create_key("guest")
        time.sleep(0.5)
        gws = [c.gw_url(g) for g in c.gateways]
        for a in range(nact):
            st, b, _ = http("PUT", gws[0] + "/api/v1/namespaces/_/actions/burn%d?overwrite=true" % a,
                            {"exec": {"kind": "python:3", "code": BURN}, "limits": {"memory": 128}},
                            auth)
            assert st == 200, (st, b)
        paths = ["/api/v1/namespaces/_/actions/burn%d?blocking=true&result=true" % a
                 for a in range(nact)]
        # warm: enough parallel calls that every invoker gets sandboxes
        with concurrent.futures.ThreadPoolExecutor(conc) as ex:
            list(ex.map(lambda i: http("POST", gws[i % 2] + paths[i % nact], {"ms": ms}, auth),
                        range(conc * 4)))
        pids = {name: p.p.pid for name, p in c.procs.items() if p.alive()}
        cpu0 = {name: cpu_of_tree(pid) for name, pid in pids.items()}
        lat, errors = [], [0]
        lock = threading.Lock()
        stop = time.time() + secs

        def caller(k):
            i = k
            while time.time() < stop:
                t0 = time.time()
                try:
                    s, _, _ = http("POST", gws[i % 2] + paths[k % nact], {"ms": ms}, auth,
                                   timeout=60)
                except OSError:
                    s = None
                with lock:
                    if s == 200:
                        lat.append(time.time() - t0)
                    else:
                        errors[0] += 1
                i += 1

        t0 = time.time()
        ths = [threading.Thread(target=caller, args=(k,)) for k in range(conc)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        wall = time.time() - t0
        cpu = {name: cpu_of_tree(pid) - cpu0[name] for name, pid in pids.items()}
        per_inv = [c.metric(c.inv_url(i), "gust_activations_total") for i in c.invokers]
        lat.sort()
        kinds = {}
        for name, v in cpu.items():
            kinds.setdefault(name.rstrip("0123456789"), 0.0)
            kinds[name.rstrip("0123456789")] += v
        return {"invokers": n, "rps": len(lat) / wall, "p50": lat[len(lat) // 2] * 1000 if lat else 0,
                "p99": lat[int(len(lat) * 0.99)] * 1000 if lat else 0, "errors": errors[0],
                "inv_cpu": [round(cpu.get(i, 0) / wall, 2) for i in c.invokers],
                "kinds": {k: round(v / wall, 2) for k, v in kinds.items()},
                "per_inv": per_inv, "wall": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--invokers", default="1,2,3,6")
    ap.add_argument("--secs", type=float, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory_mb", type=int, default=128)
    ap.add_argument("--actions", type=int, default=1)
    ap.add_argument("--conc", type=int, default=12)
    ap.add_argument("--ms", type=int, default=20)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    rows = []
    for n in [int(x) for x in a.invokers.split(",")]:
        runs = []
        for k in range(a.runs):
            r = run(n, a.secs, a.conc, a.ms, a.memory_mb, a.actions)
            runs.append(r)
            print("%d invokers, run %d: %.1f calls/s, p50 %.0f ms, p99 %.0f ms, errors %d, "
                  "invoker CPU (cores) %s, by kind %s, activations per invoker %s" % (
                      n, k + 1, r["rps"], r["p50"], r["p99"], r["errors"], r["inv_cpu"],
                      r["kinds"], r["per_inv"]), flush=True)
        runs.sort(key=lambda r: r["rps"])
        med = dict(runs[len(runs) // 2])
        med["all_rps"] = [r["rps"] for r in runs]
        rows.append(med)
    base = rows[0]["rps"] or 1
    lines = ["| invokers | calls/s (median) | the %d runs | × 1 invoker | p50 ms | p99 ms | errors | CPU of each invoker (cores, sandboxes included) | all invokers | gateways | schedulers |" % a.runs,
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k = r["kinds"]
        lines.append("| %d | %.1f | %s | %.2f | %.0f | %.0f | %d | %s | %.2f | %.2f | %.2f |" % (
            r["invokers"], r["rps"], " / ".join("%.1f" % x for x in r["all_rps"]), r["rps"] / base,
            r["p50"], r["p99"], r["errors"],
            " / ".join("%.2f" % x for x in r["inv_cpu"]), k.get("invoker", 0), k.get("gateway", 0),
            k.get("scheduler", 0)))
    text = "\n".join(lines)
    print("\n" + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
