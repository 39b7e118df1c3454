"""Feed delivery paths beyond the happy one, against the Kafka mock and Redis:

1. Pushback: namespace "slow" allows one invocation a minute, so the
   scheduler answers 429 after the first fire. The Kafka feed pauses its
   partitions (gust_trigger_feeds_paused 1; the fetcher stops: messages
   produced while paused are not fetched, gust_trigger_kafka_queued_messages
   stays 0), nothing more is acknowledged to the
   source, and an update of the trigger while paused restarts the feed (the
   close path). Then the
   limit is raised and every message arrives exactly once.
2. Dead letters: an inOrder feed (batchSize 1, maxAttempts 2) to an action
   that fails on "bad": the bad message goes to the dead-letter topic / stream
   with the reason in a header / field (for a failed activation only "the
   activation failed": the result's error text is not carried), the rest is delivered, in partition
   order (Kafka: activations sorted by start show increasing offsets per
   partition).
3. Redis pub/sub (at most once): messages published while subscribed arrive."""
import json
import os
import shutil
import subprocess
import sys
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

if shutil.which("kcat") is None:
    print("SKIP: kcat is not installed (deploy/install-deps installs it)")
    sys.exit(77)

SEEN = """def main(args):
    return {"seen": [m.get("value") or m.get("message") or m.get("fields", {}).get("v")
                     for m in args.get("messages", [])],
            "at": [[m.get("partition"), m.get("offset")] for m in args.get("messages", [])]}
"""
FAILS = """def main(args):
    for m in args.get("messages", []):
        if "bad" in str(m.get("value") or m.get("fields", {}).get("v")):
            raise Exception("refusing " + str(m))
    return {"seen": [m.get("value") or m.get("fields", {}).get("v")
                     for m in args.get("messages", [])],
            "at": [[m.get("partition"), m.get("offset")] for m in args.get("messages", [])]}
"""

c = Cluster("trigdeliv", trigger_daemons=1, kafka_mock=True,
            kafka_topics=["slow:2", "dl:2", "dl.dlq:1"],
            trigger_args=["--backoff_max_ms", "300"],
            keep=bool(os.environ.get("GUST_KEEP"))).__enter__()


def kv(d):
    return [{"key": k, "value": v} for k, v in d.items()]


def records(ns, action):
    ids = c.redis("ZRANGE", "gust:acts:" + ns, 0, -1)
    out = []
    for i in range(0, len(ids), 500):
        for raw in c.redis("MGET", *[b"gust:act:" + x for x in ids[i:i + 500]]):
            rec = json.loads(raw) if raw else {}
            if rec.get("name") == action:
                out.append(rec)
    return out


def seen(ns, action):
    counts = {}
    for rec in records(ns, action):
        for v in (rec.get("response", {}).get("result") or {}).get("seen", []):
            counts[v] = counts.get(v, 0) + 1
    return counts


def produce(topic, values):
    p = subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", topic, "-K:"],
                       input="".join("k%s:%s\n" % (v, v) for v in values).encode(),
                       capture_output=True, timeout=30)
    return p.returncode == 0


def metric(name):
    return c.trigger_metrics(0).get(name, 0)


def owned(ns, trig):
    return c.etcd_get("/gust/feed-owners/%s/%s" % (ns, trig)) is not None


try:
    c.create_namespace("guest")
    c.create_namespace("slow", {"concurrentInvocations": 100, "invocationsPerMinute": 1})
    AUTH = c.create_key("guest")
    SLOW = c.create_key("slow")
    for ns in ("guest", "slow"):
        c.grant_kafka(ns)  # the mock broker is outside the cluster
    time.sleep(0.3)
    for auth, name, code in ((AUTH, "seen", SEEN), (AUTH, "fails", FAILS), (SLOW, "seen", SEEN)):
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/" + name,
                         {"exec": {"kind": "python:3", "code": code}}, auth)
        check("create action %s" % name, st == 200, (st, b))

    @case
    def kafka_pause_on_pushback():
        body = {"annotations": [{"key": "feed", "value": "kafka"}],
                "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "slow",
                                  "batchSize": 50, "maxWaitMs": 20})}
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/pk", body, SLOW)
        check("create trigger", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/pr",
                         {"trigger": "/_/pk", "action": "/_/seen"}, SLOW)
        check("create rule", st == 200, (st, b))
        check("feed claimed", wait_until(lambda: owned("slow", "pk"), 10))
        time.sleep(0.5)
        check("produce the first", produce("slow", ["p0"]))
        check("the first arrives (the minute's one invocation)",
              wait_until(lambda: "p0" in seen("slow", "seen"), 15), seen("slow", "seen"))
        acked0 = metric('gust_trigger_events_acked_total{source="kafka"}')
        want = ["p%d" % i for i in range(1, 301)]
        check("produce 300 more", produce("slow", want))
        check("feed paused on 429",
              wait_until(lambda: metric("gust_trigger_feeds_paused") == 1, 10),
              metric("gust_trigger_feeds_paused"))
        # A real pause: the fetcher stops and drops what it had queued, so
        # messages produced now stay on the broker (when the feed only
        # stopped reading, librdkafka kept fetching them into its queue).
        check("paused: nothing fetched and unread",
              wait_until(lambda: metric("gust_trigger_kafka_queued_messages") == 0, 5),
              metric("gust_trigger_kafka_queued_messages"))
        read0 = metric('gust_trigger_events_total{source="kafka"}')
        more = ["p%d" % i for i in range(301, 501)]
        check("produce 200 more while paused", produce("slow", more))
        time.sleep(1.0)
        check("paused: the fetcher stopped (the new messages are not fetched)",
              metric("gust_trigger_kafka_queued_messages") == 0
              and metric('gust_trigger_events_total{source="kafka"}') == read0,
              (metric("gust_trigger_kafka_queued_messages"),
               metric('gust_trigger_events_total{source="kafka"}'), read0))
        want += more
        check("pushbacks counted", metric("gust_trigger_pushbacks_total") > 0)
        check("nothing acknowledged while pushed back",
              metric('gust_trigger_events_acked_total{source="kafka"}') == acked0,
              (acked0, metric('gust_trigger_events_acked_total{source="kafka"}')))
        check("nothing delivered while pushed back", set(seen("slow", "seen")) == {"p0"})
        # Restart the feed while its partitions are paused (the close path).
        body["parameters"].append({"key": "greeting", "value": "again"})
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/pk?overwrite=true", body, SLOW)
        check("update trigger while paused", st == 200, (st, b))
        log = c.procs["trigger0"].log

        def restarted():
            with open(log, errors="replace") as fh:
                return fh.read().count("feed slow/pk (kafka) running") >= 2
        check("the paused feed closed and reopened (no destroy hang)", wait_until(restarted, 10))
        check("paused again after the reopen",
              wait_until(lambda: metric("gust_trigger_feeds_paused") == 1, 10))
        c.create_namespace("slow")  # generous limits again
        t0 = time.time()
        ok = wait_until(lambda: set(want) <= set(seen("slow", "seen")), 20, 0.2)
        got = seen("slow", "seen")
        dups = {k: v for k, v in got.items() if v > 1}
        print("after raising the limit: %d of %d in %.1f s, duplicates %s" % (
            len([w for w in want if w in got]), len(want), time.time() - t0, dups), flush=True)
        check("every message arrives after the limit is raised", ok)
        check("exactly once", not dups, dups)
        check("resumed", wait_until(lambda: metric("gust_trigger_feeds_paused") == 0, 5))

    @case
    def dead_letters_and_order():
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/dk", {
            "annotations": [{"key": "feed", "value": "kafka"}],
            "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "dl", "batchSize": 1,
                              "maxWaitMs": 10, "maxAttempts": 2, "inOrder": True})}, AUTH)
        check("create kafka trigger", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/ds", {
            "annotations": [{"key": "feed", "value": "redis-stream"}],
            "parameters": kv({"stream": "dls", "batchSize": 1, "maxWaitMs": 10,
                              "maxAttempts": 2, "inOrder": True})}, AUTH)
        check("create stream trigger", st == 200, (st, b))
        for r, t in (("dkr", "dk"), ("dsr", "ds")):
            st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/" + r,
                             {"trigger": "/_/" + t, "action": "/_/fails"}, AUTH)
            check("create rule " + r, st == 200, (st, b))
        check("feeds claimed", wait_until(lambda: owned("guest", "dk") and owned("guest", "ds"), 10))
        time.sleep(0.5)
        good = ["d%d" % i for i in range(20)]
        check("produce", produce("dl", good[:10] + ["bad1"] + good[10:]))
        # "dls" is the namespace's key gust:state:guest:dls
        c.redis("XADD", "gust:state:guest:dls", "*", "v", "g1")
        c.redis("XADD", "gust:state:guest:dls", "*", "v", "bad2")
        c.redis("XADD", "gust:state:guest:dls", "*", "v", "g2")
        want = set(good) | {"g1", "g2"}
        ok = wait_until(lambda: want <= set(seen("guest", "fails")), 30, 0.3)
        check("the good messages are delivered past the bad ones", ok,
              sorted(want - set(seen("guest", "fails"))))
        check("dead letters counted",
              wait_until(lambda: metric('gust_trigger_dead_letters_total{source="kafka"}') == 1 and
                         metric('gust_trigger_dead_letters_total{source="redis-stream"}') == 1, 10),
              {k: v for k, v in c.trigger_metrics(0).items() if "dead" in k})
        p = subprocess.run(["kcat", "-C", "-b", c.kafka_bootstrap, "-t", "dl.dlq", "-o",
                            "beginning", "-e", "-q", "-f", "%s|%h\\n"],
                           capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        check("the bad message is on the dead-letter topic with the error",
              out.startswith("bad1|") and "gust-error=" in out and "gust-offset=" in out, out)
        dl = c.redis("XRANGE", "gust:state:guest:dls.dlq", "-", "+")
        fields = [dict(zip(e[1][::2], e[1][1::2])) for e in dl]
        check("the bad entry is on the dead-letter stream with the error",
              len(fields) == 1 and fields[0].get(b"v") == b"bad2" and
              fields[0].get(b"gust-error"), fields)
        # in order: each partition's offsets increase with the activations' start
        last = {}
        in_order = True
        def order_key(r):
            # start has millisecond resolution: two fires can start in the same
            # millisecond, and then only their offsets can order them
            at = [off for part, off in (r.get("response", {}).get("result") or {}).get("at", [])
                  if part is not None]
            return (r["start"], min(at) if at else -1)

        for rec in sorted(records("guest", "fails"), key=order_key):
            for part, off in (rec.get("response", {}).get("result") or {}).get("at", []):
                if part is None:
                    continue
                if off <= last.get(part, -1):
                    in_order = False
                last[part] = off
        check("inOrder: activations follow partition order", in_order and last, last)

    @case
    def pubsub_delivers_while_up():
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/ps", {
            "annotations": [{"key": "feed", "value": "redis-pubsub"}],
            "parameters": kv({"channels": "news", "batchSize": 10, "maxWaitMs": 20})}, AUTH)
        check("create pubsub trigger", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/psr",
                         {"trigger": "/_/ps", "action": "/_/seen"}, AUTH)
        check("create rule", st == 200, (st, b))

        def subscribed():
            r = c.redis("PUBSUB", "NUMSUB", "gust:state:guest:news")
            return int(r[1]) >= 1
        check("subscribed", wait_until(subscribed, 10))
        for i in range(5):
            c.redis("PUBLISH", "gust:state:guest:news", "n%d" % i)
        want = {"n%d" % i for i in range(5)}
        check("published messages arrive", wait_until(lambda: want <= set(seen("guest", "seen")), 10),
              seen("guest", "seen"))

    @case
    def cli_feed():
        env = dict(os.environ, GUST_APIHOST=c.api_host, GUST_AUTH=AUTH, GUST_ETCD=c.etcd_url,
                   GUST_CONFIG_FILE=os.path.join(c.dir, "gust-config"))

        def gust(*args):
            p = subprocess.run([c.bin("gust")] + list(args), capture_output=True, text=True,
                               env=env, timeout=30)
            return p.returncode, p.stdout, p.stderr
        rc, out, err = gust("trigger", "create", "clitick", "--feed", "schedule",
                            "-p", "intervalSeconds", "3600")
        check("gust trigger create --feed schedule", rc == 0, (rc, out, err))
        rc, out, err = gust("trigger", "get", "clitick")
        check("gust trigger get shows the feed", rc == 0 and "feed: schedule" in out, (rc, out, err))
        rc, out, err = gust("trigger", "create", "clibad", "--feed", "kafka", "-p", "topic", "t")
        check("a bad feed is one line on stderr",
              rc != 0 and err.count("\n") == 1 and "brokers" in err and not out, (rc, out, err))
        rc, out, err = gust("trigger", "create", "clibad", "--feed", "ftp")
        check("an unknown feed is refused", rc != 0 and err.count("\n") == 1, (rc, out, err))

    @case
    def stops_on_sigterm():
        p = c.procs["trigger0"].p
        p.terminate()
        try:
            rc = p.wait(8)
        except subprocess.TimeoutExpired:
            rc = "hung"
        check("gust-trigger exits on SIGTERM with its Kafka feeds closed", rc == 0, rc)
finally:
    c.__exit__(*sys.exc_info())
finish()
