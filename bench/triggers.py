"""bench/triggers.py - Kafka and Redis-stream feeds: messages per second from
the source to completed activations of a trivial action, beside the raw
consume rate from the same broker / Redis measured in the same run.

    GUST_BUILD_DIR=build python3 bench/triggers.py [N]

Kafka raw: kcat consuming the same topic from the start (process start
included). Redis raw: a pipelined XREADGROUP COUNT 1000 loop (+XACK) in
Python over the same stream. Gust: produce N, then time from the first
produce until the activation records hold all N."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from cluster import Cluster, _resp_read, wait_until  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000  # the mock keeps ~5 MB per partition
ACTION = "def main(args):\n    return {'n': len(args.get('messages', []))}\n"


def seen(c, name):
    ids = c.redis("ZRANGE", "gust:acts:guest", 0, -1)
    total = 0
    for i in range(0, len(ids), 1000):
        for raw in c.redis("MGET", *[b"gust:act:" + x for x in ids[i:i + 1000]]):
            rec = json.loads(raw) if raw else {}
            if rec.get("name") == name:
                total += (rec.get("response", {}).get("result") or {}).get("n", 0)
    return total


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


with Cluster("benchtrig", trigger_daemons=1, kafka_mock=True, kafka_topics=["raw:3", "ev:3"]) as c:
    c.create_namespace("guest")
    auth = c.create_key("guest")
    time.sleep(0.3)
    c.api("PUT", "/api/v1/namespaces/_/actions/count", {"exec": {"kind": "python:3", "code": ACTION}}, auth)
    payload = "".join("%08d-%s\n" % (i, "x" * 180) for i in range(N)).encode()  # ~200 B messages
    res = {}
    # --- Kafka raw consume rate (kcat) ---
    subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", "raw"], input=payload, check=True)
    t = time.time()
    p = subprocess.run(["kcat", "-C", "-b", c.kafka_bootstrap, "-t", "raw", "-o", "beginning",
                        "-e", "-q", "-c", str(N)], capture_output=True)
    res["kafka_raw_msgs_s"] = N / (time.time() - t)
    # --- Kafka through Gust ---
    kv = lambda d: [{"key": k, "value": v} for k, v in d.items()]
    c.api("PUT", "/api/v1/namespaces/_/triggers/kt", {
        "annotations": [{"key": "feed", "value": "kafka"}],
        "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "ev", "batchSize": 2000,
                          "maxWaitMs": 20})}, auth)
    c.api("PUT", "/api/v1/namespaces/_/rules/kr", {"trigger": "/_/kt", "action": "/_/count"}, auth)
    time.sleep(1.5)
    t = time.time()
    subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", "ev"], input=payload, check=True)
    ok = wait_until(lambda: seen(c, "count") >= N, 120, 0.2)
    res["kafka_gust_msgs_s"] = N / (time.time() - t) if ok else 0
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
    c.api("PUT", "/api/v1/namespaces/_/triggers/st", {
        "annotations": [{"key": "feed", "value": "redis-stream"}],
        "parameters": kv({"stream": "ev", "batchSize": 2000, "maxWaitMs": 20})}, auth)
    c.api("PUT", "/api/v1/namespaces/_/actions/count2", {"exec": {"kind": "python:3", "code": ACTION}}, auth)
    c.api("PUT", "/api/v1/namespaces/_/rules/sr", {"trigger": "/_/st", "action": "/_/count2"}, auth)
    time.sleep(1.5)
    t = time.time()
    for i in range(0, N, 5000):
        pipeline(c, [["XADD", "ev", "*", "v", l] for l in lines[i:i + 5000]])
    ok = wait_until(lambda: seen(c, "count2") >= N, 120, 0.2)
    res["stream_gust_msgs_s"] = N / (time.time() - t) if ok else 0
    res["kafka_ratio"] = res["kafka_gust_msgs_s"] / res["kafka_raw_msgs_s"]
    res["stream_ratio"] = res["stream_gust_msgs_s"] / res["stream_raw_msgs_s"]
    res["n"] = N
    print(json.dumps(res, indent=1))
