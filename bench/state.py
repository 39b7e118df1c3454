#!/usr/bin/env python3
"""State cache latency (docs/state.md, bench/RESULTS.md "state cache").

Starts a cluster, runs a Python action that times N GET and N SET calls of
the built-in gust_state module from inside its sandbox (through the
invoker's proxy), then a native action (bench/state_native.c, raw RESP over
/run/gust/state.sock, built static here) doing the same, and, in the same run
against the same Redis: the same
client code from outside any sandbox straight at Redis (what the proxy hop
costs), and redis-benchmark with one client (-c 1) for GET and SET.

    PYTHONPATH=tests/lib GUST_BUILD_DIR=build python3 bench/state.py [N]
"""
import json
import os
import base64
import re
import subprocess
import tempfile
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from cluster import Cluster  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000

TIMER = r'''
import time
def timeit(state, n):
    out = {}
    state.set("bench", "x" * 16)
    for op in ("get", "set"):
        lat = []
        t0 = time.perf_counter()
        for i in range(n):
            a = time.perf_counter_ns()
            if op == "get":
                state.get("bench")
            else:
                state.set("bench", "x" * 16)
            lat.append(time.perf_counter_ns() - a)
        el = time.perf_counter() - t0
        lat.sort()
        out[op] = {"p50_us": lat[n // 2] / 1000, "p99_us": lat[n * 99 // 100] / 1000,
                   "ops_s": round(n / el)}
    return out
'''

ACTION = TIMER + r'''
import gust_state
def main(a):
    return timeit(gust_state, a["n"])
'''


def direct(c, n):
    """The same module, outside the sandbox, straight at Redis over TCP (as
    the operator's Redis user)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "invoker",
                                    "runtimes", "python"))
    import gust_state
    s = c.redis_socket(None)
    gust_state._sock, gust_state._rfile = s, s.makefile("rb")
    ns = {}
    exec(TIMER, ns)
    return ns["timeit"](gust_state, n)


def redis_benchmark(c, n):
    # As the operator: redis-benchmark takes the password from REDISCLI_AUTH
    # (the environment, not the command line); --user names the ACL user.
    env = dict(os.environ)
    argv = ["redis-benchmark", "-p", str(c.redis_port), "-c", "1", "-n", str(n), "-t",
            "get,set", "-d", "16", "--precision", "3", "-q", "--csv"]
    if c.secure_stores:
        env["REDISCLI_AUTH"] = c.store_password("redis", "gust-admin")
        argv += ["--user", "gust-admin"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env).stdout
    res = {}
    for line in out.splitlines()[1:]:
        f = [x.strip('"') for x in line.split('","')]
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95","p99","max"
        res[f[0].lower()] = {"ops_s": round(float(f[1])), "p50_us": float(f[4]) * 1000,
                             "p99_us": float(f[6]) * 1000}
    return res


def native_code():
    """bench/state_native.c built static (the sandbox has no libc of ours), base64."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state_native.c")
    out = os.path.join(tempfile.mkdtemp(prefix="gust-bench-"), "state_native")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-static", "-o", out, src], check=True)
    with open(out, "rb") as f:
        return base64.b64encode(f.read()).decode()


def main():
    c = Cluster("benchstate", memory_mb=1024).__enter__()
    try:
        c.create_namespace("bench")
        auth = c.create_key("bench")
        time.sleep(0.3)
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/st?overwrite=true",
                         {"exec": {"kind": "python:3", "code": ACTION}}, auth)
        assert st == 200, b
        path = "/api/v1/namespaces/_/actions/st?blocking=true&result=true"
        c.api("POST", path, {"n": 100}, auth)  # warm
        st, inside, _ = c.api("POST", path, {"n": N}, auth)
        assert st == 200, inside
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/stn?overwrite=true",
                         {"exec": {"kind": "native", "code": native_code(), "binary": True}},
                         auth)
        assert st == 200, b
        npath = "/api/v1/namespaces/_/actions/stn?blocking=true&result=true"
        c.api("POST", npath, {"n": 100}, auth)  # warm
        st, native, _ = c.api("POST", npath, {"n": N}, auth)
        assert st == 200, native
        res = {"n": N, "python_in_sandbox_via_proxy": inside,
               "native_in_sandbox_via_proxy": native,
               "python_direct_tcp": direct(c, N),
               "redis_benchmark_c1": redis_benchmark(c, N * 4)}
        print(json.dumps(res, indent=1))
    finally:
        c.__exit__(None, None, None)


if __name__ == "__main__":
    main()
