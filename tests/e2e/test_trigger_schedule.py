"""A schedule of every 2 s fires once per period, within +-1 s of its time,
over 20 s, with two gust-trigger instances running and the one firing it
killed with SIGKILL halfway. Fire times are read from the trigger's own
activation records (gust-trigger writes one per fire, start = when it fired)."""
import json
import os
import sys
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

PERIOD_MS = 2000
c = Cluster("trigsched", trigger_daemons=2, trigger_args=["--lease_ttl_s", "2"],
            keep=bool(os.environ.get("GUST_KEEP"))).__enter__()


def fire_times():
    ids = c.redis("ZRANGE", "gust:acts:guest", 0, -1)
    out = []
    for raw in (c.redis("MGET", *[b"gust:act:" + x for x in ids]) if ids else []):
        rec = json.loads(raw) if raw else {}
        if rec.get("name") == "tick":
            out.append(rec["start"])
    return sorted(out)


try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    time.sleep(0.3)
    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/noop",
                     {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}, AUTH)
    check("create action", st == 200, (st, b))
    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/tick", {
        "annotations": [{"key": "feed", "value": "schedule"}],
        "parameters": [{"key": "intervalSeconds", "value": 2},
                       {"key": "payload", "value": {"hello": "world"}}]}, AUTH)
    check("create schedule trigger", st == 200, (st, b))
    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/tickrule",
                     {"trigger": "/_/tick", "action": "/_/noop"}, AUTH)
    check("create rule", st == 200, (st, b))

    t_start = time.time() * 1000
    time.sleep(9)
    tick = c.etcd_get("/gust/schedule-ticks/guest/tick")
    firing = json.loads(tick)["by"] if tick else None
    check("a tick was claimed", firing in ("trigger0", "trigger1"), tick)
    if firing:
        c.procs[firing].kill()
        print("killed %s (it fired the last tick)" % firing, flush=True)
    time.sleep(11)
    t_end = time.time() * 1000
    times = [t for t in fire_times() if t_start <= t <= t_end]
    # every period that began after the trigger existed (and before the end)
    first = int(t_start // PERIOD_MS) + 1
    last = int((t_end - 1000) // PERIOD_MS)
    by_period = {}
    for t in times:
        by_period.setdefault(int(round(t / PERIOD_MS)), []).append(t)
    offsets = [t - round(t / PERIOD_MS) * PERIOD_MS for t in times]
    print("fires: %d over %.1f s; offsets from the period (ms): %s" % (
        len(times), (t_end - t_start) / 1000, [int(o) for o in offsets]), flush=True)
    missing = [p for p in range(first, last + 1) if p not in by_period]
    doubled = {p: v for p, v in by_period.items() if len(v) > 1}
    check("no period missed", not missing, missing)
    check("no period fired twice", not doubled, doubled)
    check("every fire within +-1 s", all(abs(o) <= 1000 for o in offsets), offsets)
    check("about 10 fires in 20 s", 9 <= len(times) <= 11, len(times))
finally:
    c.__exit__(*sys.exc_info())
finish()
