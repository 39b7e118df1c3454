"""Feeds and output bindings act as the tenant (issue 13 point 1).

alice, bob and carol share one cluster. Each attack below is tried with
nothing but alice's (or carol's) key and must fail; beside it, the legitimate
use of the same feature must still work:

- a redis-stream feed on gust:journal (bob's in-flight activations): 400
  naming 'stream'; a record written before the check is refused by
  gust-trigger; the feed's own Redis user cannot read the journal either.
  Legit: a feed on alice's own stream delivers.
- gust:journal as the feed's deadLetterStream: 400 naming 'deadLetterStream'.
  Legit: a failing entry lands in alice's own dead-letter stream.
- a pub/sub pattern reaching outside (gust:*) or a channel outside: 400; the
  pattern * is alice's keyspace only (bob's channel never reaches her).
  Legit: alice's channel and pattern deliver.
- a binding into bob's keys (gust:state:bob:x) or the journal: 400 naming the
  list/stream; a record changed behind the gateway's back is refused by the
  invoker and bob's key stays empty. Legit: a binding to alice's own list.
- an ungranted external broker or Redis (carol): 400 naming 'brokers' /
  'redis' / 'address'; a grant revoked after the action was stored is
  refused where used; the cluster's own Redis named as an "external" one is
  refused at connect time even under a wide address grant; a broker or Redis
  granted by a DNS name that resolves to loopback is refused on connect
  (librdkafka's connect callback, hiredis by the resolved address). Legit: alice's
  granted Kafka broker works for a feed and a binding (granted with
  `gust admin grant add`)."""
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from cluster import Cluster, _resp_read, wait_until
from gtest import case, check, finish

SEEN = """def main(args):
    return {"seen": [m.get("value") or m.get("message") or m.get("fields", {}).get("v")
                     for m in args.get("messages", [])]}
"""
FAILS = """def main(args):
    raise Exception("refusing everything")
"""
ECHO = """def main(args):
    return {"n": args.get("n"), "secret": args.get("secret")}
"""

c = Cluster("secfeeds", trigger_daemons=1, kafka_mock=True, kafka_topics=["in:1", "out:1"],
            trigger_args=["--backoff_max_ms", "300"],
            keep=bool(os.environ.get("GUST_KEEP"))).__enter__()


def kv(d):
    return [{"key": k, "value": v} for k, v in d.items()]


def records(ns, action=None):
    ids = c.redis("ZRANGE", "gust:acts:" + ns, 0, -1) or []
    out = []
    for i in range(0, len(ids), 500):
        for raw in c.redis("MGET", *[b"gust:act:" + x for x in ids[i:i + 500]]):
            rec = json.loads(raw) if raw else {}
            if action is None or rec.get("name") == action:
                out.append(rec)
    return out


def seen(ns, action):
    out = []
    for rec in records(ns, action):
        out.extend((rec.get("response", {}).get("result") or {}).get("seen", []))
    return out


def trigger(auth, name, feed, params):
    return c.api("PUT", "/api/v1/namespaces/_/triggers/%s?overwrite=true" % name,
                 {"annotations": [{"key": "feed", "value": feed}], "parameters": kv(params)}, auth)


def rule(auth, name, trig, action):
    st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/%s?overwrite=true" % name,
                     {"trigger": "/_/" + trig, "action": "/_/" + action}, auth)
    check("create rule " + name, st == 200, (st, b))


def action(auth, name, code, binding=None):
    body = {"exec": {"kind": "python:3", "code": code}}
    if binding is not None:
        body["annotations"] = [{"key": "binding", "value": binding}]
    return c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body, auth)


def invoke(auth, name, params, blocking=True):
    st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=%s" %
                     (name, "true" if blocking else "false"), params, auth)
    return b.get("activationId") if st in (200, 202) and isinstance(b, dict) else None


def binding_ann(aid):
    raw = c.redis("GET", "gust:act:" + aid)
    for a in (json.loads(raw) if raw else {}).get("annotations", []):
        if a.get("key") == "binding":
            return a["value"]
    return None


def owned(ns, trig):
    return c.etcd_get("/gust/feed-owners/%s/%s" % (ns, trig)) is not None


def trigger_log():
    with open(c.procs["trigger0"].log, errors="replace") as f:
        return f.read()


def bad400(st, b, *words):
    text = json.dumps(b)
    return st == 400 and all(w in text for w in words)


def feed_user_cmd(ns, *cmd):
    """One command as the namespace's feed user (the password is derived from
    the state password in etcd, as gust_feed_connect does): the error text,
    or None when Redis accepted it."""
    pw = json.loads(c.etcd_get("/gust/state/" + ns))["password"]
    feed_pw = hashlib.sha256(b"gust-feed:" + pw.encode()).hexdigest()
    s = socket.create_connection(("127.0.0.1", c.redis_port), 5)
    try:
        f = s.makefile("rb")
        for args in (("AUTH", "gust-feed-" + ns, feed_pw), cmd):
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            try:
                _resp_read(f)
            except RuntimeError as e:
                return str(e)
        return None
    finally:
        s.close()


try:
    keys = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    ALICE, BOB, CAROL = keys["alice"], keys["bob"], keys["carol"]
    # alice's broker grant goes through the operator's tool; carol gets none.
    env = dict(os.environ, GUST_ETCD=c.etcd_url, GUST_REDIS="127.0.0.1:%d" % c.redis_port)
    for broker in c.kafka_bootstrap.split(","):
        p = subprocess.run([c.bin("gust"), "admin", "grant", "add", "alice", broker],
                           capture_output=True, text=True, env=env, timeout=30)
        check("gust admin grant add alice " + broker, p.returncode == 0, (p.stdout, p.stderr))
    p = subprocess.run([c.bin("gust"), "admin", "grant", "show", "alice"],
                       capture_output=True, text=True, env=env, timeout=30)
    check("gust admin grant show lists the brokers",
          all(b in p.stdout for b in c.kafka_bootstrap.split(",")), p.stdout)
    p = subprocess.run([c.bin("gust"), "admin", "grant", "add", "alice", "not a target"],
                       capture_output=True, text=True, env=env, timeout=30)
    check("gust admin grant add refuses a bad target", p.returncode != 0, (p.stdout, p.stderr))
    time.sleep(0.3)
    for auth in (ALICE, BOB, CAROL):
        st, b, _ = action(auth, "seen", SEEN)
        check("create action seen", st == 200, (st, b))
    st, b, _ = action(BOB, "echo", ECHO)
    check("bob: create echo", st == 200, (st, b))

    @case
    def journal_as_stream():
        st, b, _ = trigger(ALICE, "spy", "redis-stream", {"stream": "gust:journal"})
        check("journal as stream: 400 naming 'stream'", bad400(st, b, "stream", "keyspace"),
              (st, b))
        st, b, _ = trigger(ALICE, "spy2", "redis-stream", {"stream": "gust:state:bob:orders"})
        check("bob's stream: 400", bad400(st, b, "stream"), (st, b))
        # A record stored before the check existed: gust-trigger refuses it.
        c.etcd_put("/gust/triggers/alice/old", json.dumps({
            "namespace": "alice", "name": "old", "version": "0.0.1", "publish": False,
            "limits": {}, "parameters": kv({"stream": "gust:journal"}),
            "annotations": [{"key": "feed", "value": "redis-stream"}]}))
        # The rule is checked against the gateway's cache, which follows etcd
        # through a watch: wait until it has the record written behind it.
        check("gateway cache has the old trigger",
              wait_until(lambda: c.api("GET", "/api/v1/namespaces/_/triggers/old",
                                       auth=ALICE)[0] == 200, 10))
        rule(ALICE, "oldrule", "old", "seen")
        check("old record refused by gust-trigger",
              wait_until(lambda: "TRIG-FEED-REFUSED" in trigger_log() and
                         "alice/old" in trigger_log(), 10), trigger_log()[-2000:])
        aid = invoke(BOB, "echo", {"secret": "bob-s3cret"}, blocking=False)
        check("bob: non-blocking invoke", aid)
        check("bob's activation completes",
              wait_until(lambda: c.redis("GET", "gust:act:" + aid) is not None, 20))
        check("alice's records hold nothing of bob's",
              "bob-s3cret" not in json.dumps(records("alice")), records("alice"))
        # Legit: a feed on alice's own stream delivers.
        st, b, _ = trigger(ALICE, "orders", "redis-stream",
                           {"stream": "orders", "batchSize": 1, "maxWaitMs": 10})
        check("own stream: accepted", st == 200, (st, b))
        rule(ALICE, "ordersrule", "orders", "seen")
        check("own stream: feed claimed", wait_until(lambda: owned("alice", "orders"), 10))
        c.redis("XADD", "gust:state:alice:orders", "*", "v", "order-1")
        check("own stream: delivered", wait_until(lambda: "order-1" in seen("alice", "seen"), 15),
              seen("alice", "seen"))
        # Redis itself (the feed runs as alice's feed user, made by now): it
        # cannot read the journal, write bob's keys, or read plain keys.
        err = feed_user_cmd("alice", "XREADGROUP", "GROUP", "g", "c", "COUNT", "1",
                            "STREAMS", "gust:journal", ">")
        check("feed user: XREADGROUP on the journal is NOPERM", err and "NOPERM" in err, err)
        err = feed_user_cmd("alice", "XADD", "gust:state:bob:x", "*", "f", "v")
        check("feed user: XADD into bob's keys is NOPERM", err and "NOPERM" in err, err)
        err = feed_user_cmd("alice", "GET", "gust:state:alice:x")
        check("feed user: no reads of plain keys", err and "NOPERM" in err, err)
        err = feed_user_cmd("alice", "XADD", "gust:state:alice:orders", "*", "v", "order-2")
        check("feed user: XADD into alice's own stream is allowed", err is None, err)

    @case
    def journal_as_dead_letter():
        st, b, _ = trigger(ALICE, "dl", "redis-stream",
                           {"stream": "work", "deadLetterStream": "gust:journal"})
        check("journal as dead-letter stream: 400 naming it",
              bad400(st, b, "deadLetterStream"), (st, b))
        st, b, _ = action(ALICE, "fails", FAILS)
        check("create failing action", st == 200, (st, b))
        st, b, _ = trigger(ALICE, "work", "redis-stream",
                           {"stream": "work", "deadLetterStream": "dead", "maxAttempts": 1,
                            "batchSize": 1, "maxWaitMs": 10, "inOrder": True})
        check("own dead-letter stream: accepted", st == 200, (st, b))
        rule(ALICE, "workrule", "work", "fails")
        check("work feed claimed", wait_until(lambda: owned("alice", "work"), 10))
        c.redis("XADD", "gust:state:alice:work", "*", "v", "bad-1")
        check("the failed entry lands in alice's own dead-letter stream",
              wait_until(lambda: c.redis("XLEN", "gust:state:alice:dead") == 1, 20),
              c.redis("XLEN", "gust:state:alice:dead"))
        check("nothing was added to the journal by the feed",
              all(b"bad-1" not in json.dumps([str(x) for x in e]).encode()
                  for e in (c.redis("XRANGE", "gust:journal", "-", "+") or [])))

    @case
    def pubsub_outside():
        st, b, _ = trigger(ALICE, "psbad", "redis-pubsub", {"patterns": ["gust:*"]})
        check("pattern gust:*: 400 naming 'patterns'", bad400(st, b, "patterns"), (st, b))
        st, b, _ = trigger(ALICE, "psbad", "redis-pubsub", {"channels": "gust:journal"})
        check("channel outside: 400 naming 'channels'", bad400(st, b, "channels"), (st, b))
        err = feed_user_cmd("alice", "PSUBSCRIBE", "*")
        check("feed user: PSUBSCRIBE * is NOPERM", err and "NOPERM" in err, err)
        # Legit: the pattern n* and the channel direct, in alice's keyspace.
        st, b, _ = trigger(ALICE, "ps", "redis-pubsub",
                           {"patterns": ["n*"], "channels": "direct", "batchSize": 1})
        check("own pattern: accepted", st == 200, (st, b))
        rule(ALICE, "psrule", "ps", "seen")

        def subscribed():
            r = c.redis("PUBSUB", "NUMPAT") or 0
            d = c.redis("PUBSUB", "NUMSUB", "gust:state:alice:direct")
            return r >= 1 and int(d[1]) >= 1
        check("subscribed", wait_until(subscribed, 10))
        ev0 = c.trigger_metrics(0).get('gust_trigger_events_total{source="redis-pubsub"}', 0)
        # bob's channel and a global one first: Redis never sends them to the
        # feed user, so by the time alice's later message arrives they would
        # have been counted.
        c.redis("PUBLISH", "gust:state:bob:news", "bob-news")
        c.redis("PUBLISH", "news", "global-news")
        c.redis("PUBLISH", "gust:state:alice:other", "alice-unmatched")
        c.redis("PUBLISH", "gust:state:alice:news", "alice-news")
        c.redis("PUBLISH", "gust:state:alice:direct", "alice-direct")
        check("own pattern and channel deliver",
              wait_until(lambda: {"alice-news", "alice-direct"} <= set(seen("alice", "seen")), 15),
              seen("alice", "seen"))
        ev = c.trigger_metrics(0).get('gust_trigger_events_total{source="redis-pubsub"}', 0)
        check("only alice's two matching messages reached the feed", ev - ev0 == 2, ev - ev0)
        s = seen("alice", "seen")
        check("bob's and the global channel never reach alice",
              "bob-news" not in s and "global-news" not in s and "alice-unmatched" not in s, s)

    @case
    def binding_into_bob():
        for b_ in ({"redis": {"list": "gust:state:bob:x"}}, {"redis": {"stream": "gust:journal"}}):
            st, b, _ = action(ALICE, "tobob", ECHO, b_)
            check("binding %s: 400 naming it" % json.dumps(b_),
                  bad400(st, b, "binding", "keyspace"), (st, b))
        # Legit: alice's own list.
        st, b, _ = action(ALICE, "tolist", ECHO, {"redis": {"list": "out"}})
        check("own list binding: accepted", st == 200, (st, b))
        aid = invoke(ALICE, "tolist", {"n": 1})
        check("own list: published",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "published", 15),
              binding_ann(aid))
        items = c.redis("LRANGE", "gust:state:alice:out", 0, -1) or []
        check("own list: the result is in gust:state:alice:out", len(items) == 1 and
              json.loads(items[0]).get("activationId") == aid, items)
        # A record changed behind the gateway (or older than the check).
        key = "/gust/actions/alice/tolist"
        rec = json.loads(c.etcd_get(key))
        rec["annotations"] = [{"key": "binding", "value": {"redis": {"list": "gust:state:bob:x"}}}]
        c.etcd_put(key, json.dumps(rec))

        def gw_sees():
            st, b, _ = c.api("GET", "/api/v1/namespaces/_/actions/tolist", auth=ALICE)
            return "gust:state:bob:x" in json.dumps(b)
        check("gateway cache follows etcd", wait_until(gw_sees, 10))
        aid = invoke(ALICE, "tolist", {"n": 2})
        check("stale record: the invoker refuses it",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "refused", 15),
              binding_ann(aid))
        check("bob's key stays empty", c.redis("EXISTS", "gust:state:bob:x") == 0)

    @case
    def external_targets():
        brokers = c.kafka_bootstrap
        st, b, _ = trigger(CAROL, "k", "kafka", {"brokers": brokers, "topic": "in"})
        check("carol: ungranted broker feed is 400 naming 'brokers'",
              bad400(st, b, "brokers", "policy"), (st, b))
        st, b, _ = action(CAROL, "tok", ECHO, {"kafka": {"brokers": brokers, "topic": "out"}})
        check("carol: ungranted broker binding is 400", bad400(st, b, "brokers"), (st, b))
        own = "127.0.0.1:%d" % c.redis_port
        st, b, _ = trigger(CAROL, "r", "redis-stream", {"redis": own, "stream": "gust:journal"})
        check("carol: the cluster's Redis as an external one is 400 naming 'redis'",
              bad400(st, b, "redis"), (st, b))
        st, b, _ = action(CAROL, "tor", ECHO, {"redis": {"list": "x", "address": "10.9.8.7:6379"}})
        check("carol: ungranted Redis address binding is 400", bad400(st, b, "address"), (st, b))
        # Even a wide address grant does not reach the cluster's own Redis:
        # only an entry naming exactly that address and port would.
        c.grant("carol", "127.0.0.1")
        st, b, _ = trigger(CAROL, "r", "redis-stream",
                           {"redis": own, "stream": "gust:journal", "batchSize": 1})
        check("carol: accepted under the wide grant", st == 200, (st, b))
        rule(CAROL, "rr", "r", "seen")
        check("carol: refused at connect time by gust-trigger",
              wait_until(lambda: "carol/r" in trigger_log() and "cluster's own" in trigger_log(),
                         10), trigger_log()[-2000:])
        st, b, _ = action(CAROL, "tor2", ECHO, {"redis": {"list": "gust:state:bob:y",
                                                          "address": own}})
        check("carol: binding accepted under the wide grant", st == 200, (st, b))
        aid = invoke(CAROL, "tor2", {"n": 3})
        check("carol: refused at connect time by the invoker",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "refused", 15) and
              "cluster's own" in (binding_ann(aid) or {}).get("error", ""), binding_ann(aid))
        check("bob's key stays empty", c.redis("EXISTS", "gust:state:bob:y") == 0)
        # Legit: alice's granted broker, for a feed and a binding.
        st, b, _ = trigger(ALICE, "kin", "kafka",
                           {"brokers": brokers, "topic": "in", "batchSize": 1, "maxWaitMs": 10})
        check("alice: granted broker feed accepted", st == 200, (st, b))
        rule(ALICE, "kinrule", "kin", "seen")
        check("alice: kafka feed claimed", wait_until(lambda: owned("alice", "kin"), 10))
        p = subprocess.run(["kcat", "-P", "-b", brokers, "-t", "in", "-K:"],
                           input=b"k:kafka-1\n", capture_output=True, timeout=30)
        check("kcat produced", p.returncode == 0, p.stderr)
        check("alice: granted broker feed delivers",
              wait_until(lambda: "kafka-1" in seen("alice", "seen"), 20), seen("alice", "seen"))
        st, b, _ = action(ALICE, "tok", ECHO, {"kafka": {"brokers": brokers, "topic": "out"}})
        check("alice: granted broker binding accepted", st == 200, (st, b))
        aid = invoke(ALICE, "tok", {"n": 4})
        check("alice: granted broker binding publishes",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "published", 20),
              binding_ann(aid))
        # A grant by DNS name that resolves to loopback: the name passes the
        # policy, the address it resolves to does not (checked on connect).
        port = brokers.split(",")[0].rsplit(":", 1)[1]
        c.grant("bob", "localhost:" + port, "localhost:1")
        st, b, _ = action(BOB, "toloop", ECHO, {"kafka": {"brokers": "localhost:" + port,
                                                          "topic": "out"}})
        check("bob: broker granted by name accepted", st == 200, (st, b))
        aid = invoke(BOB, "toloop", {"n": 6})
        check("bob: its loopback address is refused by the invoker's connect callback",
              wait_until(lambda: "INV-BIND-EGRESS" in open(c.procs["invoker0"].log,
                                                            errors="replace").read(), 20))
        check("bob: so nothing is published",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "pending", 20),
              binding_ann(aid))
        st, b, _ = trigger(BOB, "loopfeed", "redis-stream",
                           {"redis": "localhost:1", "stream": "s", "batchSize": 1})
        check("bob: redis feed granted by name accepted", st == 200, (st, b))
        rule(BOB, "looprule", "loopfeed", "seen")
        check("bob: refused at connect time (loopback) by gust-trigger",
              wait_until(lambda: "bob/loopfeed" in trigger_log() and
                         "loopback" in trigger_log(), 10), trigger_log()[-2000:])
        st, b, _ = trigger(BOB, "loopk", "kafka", {"brokers": "localhost:" + port, "topic": "in"})
        check("bob: kafka feed granted by name accepted", st == 200, (st, b))
        rule(BOB, "loopkrule", "loopk", "seen")
        check("bob: its broker's loopback address refused by gust-trigger's connect callback",
              wait_until(lambda: "TRIG-FEED-EGRESS" in trigger_log(), 20), trigger_log()[-2000:])
        # The grant revoked after the action was stored: refused where used.
        for broker in brokers.split(","):
            c.revoke("alice", broker)
        aid = invoke(ALICE, "tok", {"n": 5})
        check("alice: revoked grant refused by the invoker",
              wait_until(lambda: (binding_ann(aid) or {}).get("status") == "refused", 20),
              binding_ann(aid))

finally:
    c.__exit__(*sys.exc_info())
finish()
