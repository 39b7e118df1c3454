"""bench/triggers.py - Kafka and Redis-stream feeds: messages per second from
the source to completed activations of a trivial action, beside the raw
consume rate from the same broker / Redis measured in the same run.

    GUST_BUILD_DIR=build python3 bench/triggers.py [N]

Both paths drain the same kind of backlog, so that they are compared on the
same work: N messages (~200 B) are produced first, then consumed.
Kafka raw: kcat consuming its topic from the start (process start included).
Redis raw: a XREADGROUP COUNT 1000 + XACK loop in Python over the same stream.
Gust: the feed is attached after the backlog is in place; its rate is the
messages completed from the first completed activation to the last, over
that time (steady-state drain; the feed's start-up, a cold start and the
first batch are left out and reported separately as "first fire")."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from cluster import Cluster, _resp_read, wait_until  # noqa: E402

# The mock keeps only so much (about 5 MB a partition, less in all when it holds
# more, and not always the same): 20k x 200 B over 6 partitions stays within it;
# 50k did not, every time (kcat itself then read only ~40k of them).
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
ACTION = "def main(args):\n    return {'n': len(args.get('messages', []))}\n"


class Seen:
    """Counts the messages the action's records account for, reading only the
    records that are new since the last look."""

    def __init__(self, c, name):
        self.c, self.name, self.done, self.total = c, name, set(), 0

    def __call__(self):
        ids = [x for x in self.c.redis("ZRANGE", "gust:acts:guest", 0, -1) if x not in self.done]
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            for x, raw in zip(chunk, self.c.redis("MGET", *[b"gust:act:" + y for y in chunk])):
                if not raw:
                    continue  # indexed, record not yet readable: next look
                self.done.add(x)
                rec = json.loads(raw)
                if rec.get("name") == self.name:
                    self.total += (rec.get("response", {}).get("result") or {}).get("n", 0)
        return self.total


def drain(c, name, n):
    """(steady msgs/s, seconds to the first completed fire) while the feed drains n."""
    seen, t0 = Seen(c, name), time.time()
    first_t = first_n = None
    end = t0 + 60
    while time.time() < end:
        got = seen()
        if got and first_t is None:
            first_t, first_n = time.time(), got
        if got >= n:
            break
        time.sleep(0.01)
    t = time.time()
    if first_t is None or seen() < n:
        print("%s: only %d of %d messages completed" % (name, seen(), n), file=sys.stderr)
        return 0.0, None
    return (n - first_n) / max(t - first_t, 1e-6), first_t - t0


def pipeline(c, cmds):
    s = socket.create_connection(("127.0.0.1", c.redis_port), 30)
    buf = b""
    for args in cmds:
        buf += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            buf += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(buf)
    f = s.makefile("rb")
    out = [_resp_read(f) for _ in cmds]
    s.close()
    return out


with Cluster("benchtrig", trigger_daemons=1, kafka_mock=True, kafka_topics=["ev:6"]) as c:
    c.create_namespace("guest")
    auth = c.create_key("guest")
    time.sleep(0.3)
    c.api("PUT", "/api/v1/namespaces/_/actions/count", {"exec": {"kind": "python:3", "code": ACTION}}, auth)
    payload = "".join("%08d-%s\n" % (i, "x" * 180) for i in range(N)).encode()  # ~200 B messages
    res = {}
    # --- Kafka raw consume rate (kcat), on a broker of its own: the mock
    # cluster drops old messages once it holds a few tens of MB in all, so
    # the raw topic must not share the Gust path's broker. Same program,
    # same options, same partitions. ---
    bfile = os.path.join(c.dir, "raw.bootstrap")
    mock = subprocess.Popen([os.path.join(os.environ["GUST_BUILD_DIR"], "triggers", "gust-kafka-mock"),
                             "--topic", "raw:6", "--bootstrap-file", bfile],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(bfile) and open(bfile).read().strip(), 10)
        boot = open(bfile).read().strip()
        subprocess.run(["kcat", "-P", "-b", boot, "-t", "raw"], input=payload, check=True)
        t = time.time()
        p = subprocess.run(["kcat", "-C", "-b", boot, "-t", "raw", "-o", "beginning",
                            "-e", "-q", "-c", str(N)], capture_output=True)
        got = p.stdout.count(b"\n")
        res["kafka_raw_msgs_s"] = got / (time.time() - t)
        if got < N:
            print("raw: kcat read only %d of %d" % (got, N), file=sys.stderr)
    finally:
        mock.terminate()
        mock.wait()
    # --- Kafka through Gust ---
    kv = lambda d: [{"key": k, "value": v} for k, v in d.items()]
    subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", "ev"], input=payload, check=True)
    c.api("PUT", "/api/v1/namespaces/_/triggers/kt", {
        "annotations": [{"key": "feed", "value": "kafka"}],
        "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "ev", "batchSize": 4000,
                          "maxWaitMs": 20})}, auth)
    c.api("PUT", "/api/v1/namespaces/_/rules/kr", {"trigger": "/_/kt", "action": "/_/count"}, auth)
    res["kafka_gust_msgs_s"], res["kafka_first_fire_s"] = drain(c, "count", N)
    c.api("DELETE", "/api/v1/namespaces/_/rules/kr", auth=auth)
    # --- Redis stream raw XREADGROUP loop ---
    lines = payload.split(b"\n")[:N]
    for i in range(0, N, 5000):
        pipeline(c, [["XADD", "raw", "*", "v", l] for l in lines[i:i + 5000]])
    c.redis("XGROUP", "CREATE", "raw", "g", "0")
    # simple, correct loop through the helper (one connection per call)
    t = time.time()
    got = 0
    while got < N:
        r = c.redis("XREADGROUP", "GROUP", "g", "c", "COUNT", 1000, "STREAMS", "raw", ">")
        entries = r[0][1] if r else []
        if not entries:
            break
        c.redis("XACK", "raw", "g", *[e[0] for e in entries])
        got += len(entries)
    res["stream_raw_msgs_s"] = got / (time.time() - t)
    # --- Redis stream through Gust ---
    for i in range(0, N, 5000):
        pipeline(c, [["XADD", "ev", "*", "v", l] for l in lines[i:i + 5000]])
    c.api("PUT", "/api/v1/namespaces/_/actions/count2", {"exec": {"kind": "python:3", "code": ACTION}}, auth)
    c.api("PUT", "/api/v1/namespaces/_/triggers/st", {
        "annotations": [{"key": "feed", "value": "redis-stream"}],
        "parameters": kv({"stream": "ev", "batchSize": 4000, "maxWaitMs": 20})}, auth)
    c.api("PUT", "/api/v1/namespaces/_/rules/sr", {"trigger": "/_/st", "action": "/_/count2"}, auth)
    res["stream_gust_msgs_s"], res["stream_first_fire_s"] = drain(c, "count2", N)
    res["kafka_ratio"] = res["kafka_gust_msgs_s"] / res["kafka_raw_msgs_s"]
    res["stream_ratio"] = res["stream_gust_msgs_s"] / res["stream_raw_msgs_s"]
    res["n"] = N
    print(json.dumps(res, indent=1))
