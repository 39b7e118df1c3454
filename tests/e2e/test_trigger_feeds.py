"""Kafka and Redis-stream feeds end to end, with counts: N events become
exactly the N events seen by the action, while the gust-trigger instance
running each feed and, separately, the leading scheduler are killed with
SIGKILL mid-stream. Nothing may be missing; duplicates (allowed: delivery is
at least once) are counted and reported.

How events are counted: sandboxes have no network, so the action cannot add
what it saw to a Redis set itself (issue 7 gives functions state access).
Instead it returns the events it saw ({"seen": [...]}); every completed
activation's record lands in Redis (gust:act:<id>, indexed by gust:acts:<ns>),
and the test reads all records of the namespace and counts each event once.
That is the same count a Redis set written by the action would give, plus the
duplicates the set would hide."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from cluster import Cluster, free_port, wait_until
from gtest import case, check, finish

if shutil.which("kcat") is None:
    print("SKIP: kcat is not installed (deploy/install-deps installs it)")
    sys.exit(77)

N_KAFKA = 3000
N_STREAM = 3000
ACTION = """def main(args):
    return {"seen": [m.get("value") or m.get("fields", {}).get("v") for m in args.get("messages", [])]}
"""

c = Cluster("trigfeeds", schedulers=2, trigger_daemons=2, kafka_mock=True, kafka_topics=["events:3"],
            trigger_args=["--lease_ttl_s", "2"],
            keep=bool(os.environ.get("GUST_KEEP"))).__enter__()


def redis_pipeline(cmds):
    s = c.redis_socket(10)
    out = b""
    for args in cmds:
        out += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    f = s.makefile("rb")
    from cluster import _resp_read
    replies = [_resp_read(f) for _ in cmds]
    s.close()
    return replies


def seen_counts(action):
    """{event: times seen} over every record of namespace guest for action."""
    ids = c.redis("ZRANGE", "gust:acts:guest", 0, -1)
    counts = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for raw in c.redis("MGET", *[b"gust:act:" + x for x in chunk]):
            if not raw:
                continue
            rec = json.loads(raw)
            if rec.get("name") != action:
                continue
            for v in (rec.get("response", {}).get("result") or {}).get("seen", []):
                counts[v] = counts.get(v, 0) + 1
    return counts


def feed_owner(trigger):
    v = c.etcd_get("/gust/feed-owners/guest/" + trigger)
    return json.loads(v)["owner"] if v else None


def kcat_produce(lo, hi):
    data = "".join("k%d:m%d\n" % (i, i) for i in range(lo, hi))
    p = subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", "events", "-K:"],
                       input=data.encode(), capture_output=True, timeout=30)
    return p.returncode == 0


def xadd(lo, hi):
    # The feed's "ev" is the namespace's key gust:state:guest:ev.
    return redis_pipeline([["XADD", "gust:state:guest:ev", "*", "v", "s%d" % i]
                           for i in range(lo, hi)])


try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    c.grant_kafka("guest")  # the mock broker is outside the cluster
    time.sleep(0.3)

    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/count",
                     {"exec": {"kind": "python:3", "code": ACTION}}, AUTH)
    check("create action", st == 200, (st, b))

    @case
    def bad_feed_refused():
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/bad",
                         {"annotations": [{"key": "feed", "value": "kafka"}],
                          "parameters": [{"key": "brokers", "value": c.kafka_bootstrap}]}, AUTH)
        check("kafka feed without topic is 400", st == 400 and "topic" in b.get("error", ""),
              (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/bad",
                         {"annotations": [{"key": "feed", "value": "schedule"}],
                          "parameters": [{"key": "cron", "value": "61 * * * *"}]}, AUTH)
        check("bad cron is 400", st == 400, (st, b))

    def kv(d):
        return [{"key": k, "value": v} for k, v in d.items()]

    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/kt", {
        "annotations": [{"key": "feed", "value": "kafka"}],
        "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "events", "batchSize": 100,
                          "maxWaitMs": 20})}, AUTH)
    check("create kafka trigger", st == 200, (st, b))
    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/st", {
        "annotations": [{"key": "feed", "value": "redis-stream"}],
        "parameters": kv({"stream": "ev", "batchSize": 100, "maxWaitMs": 20})}, AUTH)
    check("create stream trigger", st == 200, (st, b))
    for rule, trig in (("kr", "kt"), ("sr", "st")):
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/" + rule,
                         {"trigger": "/_/" + trig, "action": "/_/count"}, AUTH)
        check("create rule " + rule, st == 200, (st, b))

    check("kafka feed claimed", wait_until(lambda: feed_owner("kt"), 10), feed_owner("kt"))
    check("stream feed claimed", wait_until(lambda: feed_owner("st"), 10), feed_owner("st"))

    t0 = time.time()
    third = N_KAFKA // 3
    check("kcat produce 1", kcat_produce(0, third))
    xadd(0, N_STREAM // 3)
    time.sleep(1.0)

    # 1. SIGKILL the instance running the Kafka feed; the other takes it over.
    victim = feed_owner("kt")
    c.procs[victim].kill()
    print("killed %s (owner of the kafka feed)" % victim, flush=True)
    check("kcat produce 2", kcat_produce(third, 2 * third))
    xadd(N_STREAM // 3, 2 * N_STREAM // 3)
    moved = wait_until(lambda: feed_owner("kt") not in (None, victim), 10)
    check("kafka feed taken over within 10 s", moved, feed_owner("kt"))
    c.start_trigger(int(victim[-1]))

    # 2. SIGKILL the instance running the stream feed (it may be the same one).
    time.sleep(1.0)
    victim2 = feed_owner("st")
    if victim2:
        c.procs[victim2].kill()
        print("killed %s (owner of the stream feed)" % victim2, flush=True)
        moved = wait_until(lambda: feed_owner("st") not in (None, victim2), 10)
        check("stream feed taken over within 10 s", moved, feed_owner("st"))
        c.start_trigger(int(victim2[-1]))

    # 3. SIGKILL the leading scheduler mid-stream.
    lead = c.leader()
    check("a leading scheduler", lead is not None)
    if lead:
        c.procs[lead].kill()
        print("killed %s (leading scheduler)" % lead, flush=True)
    check("kcat produce 3", kcat_produce(2 * third, N_KAFKA))
    xadd(2 * N_STREAM // 3, N_STREAM)

    want_k = {"m%d" % i for i in range(N_KAFKA)}
    want_s = {"s%d" % i for i in range(N_STREAM)}

    def all_seen():
        seen = seen_counts("count")
        return want_k <= set(seen) and want_s <= set(seen)

    wait_until(all_seen, 60, 0.5)
    seen = seen_counts("count")
    elapsed = time.time() - t0
    for label, want in (("kafka", want_k), ("stream", want_s)):
        got = {k: v for k, v in seen.items() if k in want}
        missing = want - set(got)
        dups = sum(v - 1 for v in got.values())
        print("%s: produced %d, seen %d distinct, missing %d, duplicates %d (%.1f s)" % (
            label, len(want), len(got), len(missing), dups, elapsed), flush=True)
        check("%s: nothing missing" % label, not missing, sorted(missing)[:10])
    m = {}
    for i in range(2):
        try:
            for k, v in c.trigger_metrics(i).items():
                m[k] = m.get(k, 0) + v
        except Exception:
            pass
    print("metrics (both instances, since their last start): %s" % json.dumps(
        {k: v for k, v in m.items() if k.startswith("gust_trigger_") and "bucket" not in k},
        sort_keys=True), flush=True)

    @case
    def delete_stops_feed():
        st, _, _ = c.api("DELETE", "/api/v1/namespaces/_/triggers/kt", auth=AUTH)
        check("delete trigger", st == 200)
        check("claim released after delete", wait_until(lambda: feed_owner("kt") is None, 10))
finally:
    c.__exit__(*sys.exc_info())
finish()
