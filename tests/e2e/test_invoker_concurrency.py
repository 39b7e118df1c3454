"""Intra-sandbox concurrency (limits.concurrency > 1, Node.js only, as in
OpenWhisk): one warm nodejs sandbox runs several activations at once, each
gets its own result (routed by activation id), and the sandbox's memory is
counted once. With concurrency > 1, logs are not delimited per activation:
each log line lands in exactly one record, not necessarily its own.

How it can fail: without concurrency the four 1-second activations need
four sandboxes (or 4 s in one)."""
import json
import re
import threading
import time
import urllib.request

from cluster import Cluster, wait_until
from gtest import case, check, finish

SLOW = ("async function main(a) {\n"
        "  console.log('start ' + a.i);\n"
        "  await new Promise((r) => setTimeout(r, a.ms || 1000));\n"
        "  if (a.boom) throw new Error('boom ' + a.i);\n"
        "  return {i: a.i};\n"
        "}\n")


def gauge(c, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.inv_metrics[0], timeout=5) as r:
        m = re.search(r"^%s (\d+)" % name, r.read().decode(), re.M)
    return int(m.group(1)) if m else -1


c = Cluster("conc", invokers=1, memory_mb=512).__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")

    def put(name, code, **limits):
        body = {"exec": {"kind": "nodejs:20", "code": code}, "limits": limits}
        return c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body,
                     AUTH)[0] == 200

    assert wait_until(lambda: put("slow", SLOW, concurrency=4, memory=128), timeout=10)

    def invoke(params, out, k):
        out[k] = c.api("POST", "/api/v1/namespaces/_/actions/slow?blocking=true", params, AUTH)

    @case
    def four_at_once_in_one_sandbox():
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/slow?blocking=true&result=true",
                         {"i": 0, "ms": 1}, AUTH)
        check("warm-up", st == 200 and b == {"i": 0}, (st, b))
        out = {}
        ts = [threading.Thread(target=invoke, args=({"i": k},), kwargs={"out": out, "k": k})
              for k in range(1, 5)]
        t0 = time.time()
        for t in ts:
            t.start()
        time.sleep(0.5)
        sandboxes = gauge(c, "gust_invoker_sandboxes")
        for t in ts:
            t.join()
        dt = time.time() - t0
        results = {k: out[k][1].get("response", {}).get("result") for k in out}
        check("each activation gets its own result",
              all(out[k][0] == 200 and results[k] == {"i": k} for k in range(1, 5)), out)
        check("they ran at once (about 1 s, not 4)", dt < 2.5, dt)
        check("in one sandbox", sandboxes == 1, sandboxes)
        lines = [l for k in out for l in out[k][1].get("logs", []) if "start " in l]
        check("no log line is in two records", len(lines) == len(set(lines)) and len(lines) <= 5,
              lines)

    @case
    def exception_and_timeout():
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/slow?blocking=true",
                         {"i": 7, "ms": 1, "boom": True}, AUTH)
        check("a thrown Error is a developer error",
              st == 502 and b["response"]["statusCode"] == 2
              and b["response"]["result"] == {"error": "boom 7"}, (st, b))
        assert put("slow", SLOW, concurrency=4, memory=128, timeout=500)
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/slow?blocking=true",
                         {"i": 8, "ms": 3000}, AUTH)
        check("a concurrent activation past its deadline times out",
              st == 502 and "time limit" in json.dumps(b), (st, b))
finally:
    c.__exit__(None, None, None)
finish()
