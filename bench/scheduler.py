#!/usr/bin/env python3
"""bench/scheduler.py - issue 5's scheduler benchmarks, each beside a baseline
measured in the same run:

1. placement decisions per second on one core: build/scheduler/gust-bench-place
   (the scheduler's own sched_place and sched_admit in a loop), beside one
   64-bit hash per decision;
2. end-to-end non-blocking invocations per second (wrk, 64 connections,
   `?blocking=false`: accepted/s at the gateway, and completed/s counted at the
   invoker), beside blocking invocations of the same action in the same run;
3. failover time: the leading scheduler is SIGKILLed under a stream of
   non-blocking invocations; time until the new leader places its first
   activation (its gust_scheduler_placed_total leaves 0).

    sudo bench/scheduler.py [--runs 3] [--failovers 5] [--quick]
Prints a Markdown table; medians of the runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, HERE)
os.environ.setdefault("GUST_BUILD_DIR", os.path.join(ROOT, "build"))
os.environ.setdefault("GUST_SOURCE_DIR", ROOT)

from cluster import Cluster, wait_until  # noqa: E402
from invoke import basic, run_wrk, wait_key_visible  # noqa: E402

CODE = "def main(args):\n    return {'payload': 'hello ' + args.get('name', 'world')}\n"


def placement(runs):
    exe = os.path.join(os.environ["GUST_BUILD_DIR"], "scheduler", "gust-bench-place")
    rs = [json.loads(subprocess.check_output([exe])) for _ in range(runs)]
    return {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "sink"}


def executions(c):
    return c.metric(c.inv_metrics[0], "gust_activations_total") or 0


def e2e(c, auth, runs, duration):
    base = c.api_host + "/api/v1/namespaces/_/actions/hello"
    out = {"blocking_rps": [], "accepted_rps": [], "completed_rps": []}
    for _ in range(runs):
        b = run_wrk(base + "?blocking=true&result=true", 64, duration, basic(auth))
        if b["errors"]:
            raise RuntimeError("blocking run had errors: %s" % b["errors"])
        out["blocking_rps"].append(b["rps"])
        e0 = executions(c)
        t0 = time.time()
        r = run_wrk(base + "?blocking=false", 64, duration, basic(auth))
        if r["errors"]:
            raise RuntimeError("non-blocking run had errors: %s" % r["errors"])
        accepted = r["requests"]
        # completed: wait until the invoker has run everything accepted
        wait_until(lambda: executions(c) - e0 >= accepted, timeout=120, interval=0.05)
        done = executions(c) - e0
        out["accepted_rps"].append(r["rps"])
        out["completed_rps"].append(done / (time.time() - t0))
        if done < accepted:
            raise RuntimeError("only %d of %d accepted activations ran" % (done, accepted))
    return {k: statistics.median(v) for k, v in out.items()}


def failover(c, auth, n):
    times = []
    for _ in range(n):
        leader = c.leader()
        other = [s for s in c.sched_ports if s != leader][0]
        stop = threading.Event()

        def stream():
            while not stop.is_set():
                c.api("POST", "/api/v1/namespaces/_/actions/hello?blocking=false", {"name": "f"}, auth)
                time.sleep(0.01)
        t = threading.Thread(target=stream)
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        c.procs[leader].kill()
        port = c.sched_ports[other]
        ok = wait_until(lambda: (c.metric(port, "gust_scheduler_placed_total") or 0) > 0,
                        timeout=15, interval=0.01)
        dt = time.time() - t0
        stop.set()
        t.join()
        if not ok:
            raise RuntimeError("no placement by the new leader within 15 s")
        times.append(dt)
        # the old leader comes back as a standby with fresh counters
        c.start_scheduler(leader)
        wait_until(lambda: c.sched_health(leader).get("id") == leader, timeout=10)
        # the survivor must lead and have placed; make the next kill hit it
        time.sleep(0.5)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.failovers, a.duration = 1, 2, 3
    place = placement(a.runs)
    with Cluster("bench-sched", schedulers=2) as c:
        c.create_namespace("guest")
        auth = c.create_key("guest")
        wait_key_visible(c, auth)
        st, body, _ = c.api("PUT", "/api/v1/namespaces/_/actions/hello?overwrite=true",
                            {"exec": {"kind": "python:3", "code": CODE}}, auth)
        assert st == 200, (st, body)
        for _ in range(20):
            assert c.api("POST", "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
                         {"name": "x"}, auth)[0] == 200
        run_wrk(c.api_host + "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
                64, 2, basic(auth))  # warm enough sandboxes for 64 connections
        e = e2e(c, auth, a.runs, a.duration)
        f = failover(c, auth, a.failovers)
    print("| measure | median | baseline in the same run |")
    print("|---|---|---|")
    print("| placement decisions/s, 1 core, 10 invokers | %.2fM | one hash per decision: %.1fM/s |"
          % (place["place_10_invokers_per_s"] / 1e6, place["baseline_hash_per_s"] / 1e6))
    print("| placement decisions/s, 1 core, 100 invokers | %.2fM | |" % (place["place_100_invokers_per_s"] / 1e6))
    print("| admission decisions/s, 1 core | %.1fM | |" % (place["admit_per_s"] / 1e6))
    print("| non-blocking invokes accepted/s (64 conns) | %.0f | blocking invokes/s: %.0f |"
          % (e["accepted_rps"], e["blocking_rps"]))
    print("| non-blocking invokes completed/s | %.0f | blocking invokes/s: %.0f |"
          % (e["completed_rps"], e["blocking_rps"]))
    print("| failover: leader killed -> first placement by the new leader | %.2f s (runs: %s) | lease TTL 2 s |"
          % (statistics.median(f), ", ".join("%.2f" % x for x in f)))


if __name__ == "__main__":
    main()
