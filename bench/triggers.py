"""bench/triggers.py - Kafka and Redis-stream feeds: messages per second from
the source to completed activations of a trivial action, beside the raw
consume rate from the same broker / Redis measured in the same run.

    GUST_BUILD_DIR=build python3 bench/triggers.py [--n N] [--runs R]
        [--kind python:3|nodejs:20] [--batch B] [--partitions P] [--skip-stream]

Each run drains backlogs that are all in place before anything consumes:
N messages of ~200 B produced to a topic of P partitions on gust-kafka-mock,
and N entries to two Redis streams. The raw reader and the feed read the
same topic (the raw reader with groups of their own that commit nothing):
the mock serves a fetch by scanning a partition's message sets
(rdkafka_mock.c: "FIXME: Maintain an index"), so how the producer happened
to batch a topic sets its read rate; two topics made the same way differed
by up to 2x. The mock keeps about 5 MB per partition (rdkafka_mock.c
in librdkafka 2.0.2: max_size 5 MiB, max_cnt 100000 message sets, per
partition, not configurable), so the backlog is spread over many partitions
(producer sticky partitioning off so none is overfilled).

Raw: gust-bench-feed-raw (bench/feed_raw_bench.c), the same client library
and consumer settings as the feed (all partitions assigned, fetch.wait.max.ms
10, the feed's prefetch limits; XREADGROUP COUNT 1000 + XACK on one
connection), timed from its first message to its last; the median of three
reads of the whole backlog, each with a consumer group of its own.
Gust: the feed is attached after the backlogs are in place; its rate is the
messages completed from the first completed activation to the last, over
that time (the feed's start-up, the action's cold start and the first
batch are left out: "first fire"). Completed = the action's activation
records account for them. Beside the rate, the CPU seconds and minor page
faults of every process the cluster started (daemons, broker, sandboxes),
from attaching the feed until the drain is done: kafka_cpu_s and
kafka_page_faults, by program name. --perf FILE records perf -a -g over the
same span.

Prints each run and the medians as JSON."""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from cluster import Cluster, _resp_read  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=300000)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--kind", default="python:3")
ap.add_argument("--batch", type=int, default=4000)
ap.add_argument("--partitions", type=int, default=64)
ap.add_argument("--skip-stream", action="store_true")
ap.add_argument("--trigger-arg", action="append", default=[])
ap.add_argument("--perf", metavar="FILE",
                help="perf record -a -g into FILE.<run> while the feed drains the Kafka topic")
args = ap.parse_args()
N = args.n
ACTIONS = {
    "python:3": "def main(args):\n    return {'n': len(args.get('messages', []))}\n",
    "nodejs:20": "function main(args) { return {n: (args.messages || []).length}; }\n",
}
RAW = os.path.join(os.environ["GUST_BUILD_DIR"], "triggers", "gust-bench-feed-raw")


class Seen:
    """Counts the messages the action's records account for, reading only the
    records that are new since the last look. The namespace's index is read
    from the drain's start on (its scores are start times): reading all of it
    every 10 ms, earlier runs' records included, took ~4% of the machine's
    CPU from the drain being measured."""

    def __init__(self, c, name):
        self.c, self.name, self.done, self.total = c, name, set(), 0
        self.since = int(time.time() * 1000) - 1000
        # one connection for the whole drain, not two per look
        self.s = c.redis_socket(30)
        self.f = self.s.makefile("rb")

    def redis(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return _resp_read(self.f)

    def close(self):
        self.f.close()
        self.s.close()

    def __call__(self):
        ids = [x for x in self.redis("ZRANGEBYSCORE", "gust:acts:guest", self.since, "+inf")
               if x not in self.done]
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            for x, raw in zip(chunk, self.redis("MGET", *[b"gust:act:" + y for y in chunk])):
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
    end = t0 + 120
    while time.time() < end:
        got = seen()
        if got and first_t is None:
            first_t, first_n = time.time(), got
        if got >= n:
            break
        time.sleep(0.01)
    t = time.time()
    got = seen()
    seen.close()
    if first_t is None or got < n:
        print("%s: only %d of %d messages completed" % (name, got, n), file=sys.stderr)
        return 0.0, None
    return (n - first_n) / max(t - first_t, 1e-6), first_t - t0


def cpu_snapshot():
    """{pid: (comm, CPU seconds)} of this process's descendants: the cluster's
    daemons, the broker and the action sandboxes."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        procs[int(d)] = (comm, int(f[1]), (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"),
                         int(f[7]))
    out, me = {}, os.getpid()
    for pid, (comm, ppid, cpu, minflt) in procs.items():
        p, seen = ppid, 0
        while p not in (0, 1, me) and p in procs and seen < 64:
            p, seen = procs[p][1], seen + 1
        if p == me:
            out[pid] = (comm, cpu, minflt)
    return out


def cpu_used(before, after, field=1, ndigits=2):
    """CPU seconds (field 1) or minor page faults (field 2) per program name
    between two snapshots (node and python3 are the action sandboxes)."""
    used = {}
    for pid, now in after.items():
        d = now[field] - before.get(pid, (now[0], 0, 0))[field]
        if d > 0:
            used[now[0]] = round(used.get(now[0], 0) + d, ndigits)
    return dict(sorted(used.items(), key=lambda x: -x[1]))


def pipeline(c, cmds):
    s = c.redis_socket(30)
    parts = []  # joined once: += on bytes copies the whole buffer each time
    for a in cmds:
        parts.append(b"*%d\r\n" % len(a))
        for x in a:
            x = x if isinstance(x, bytes) else str(x).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(x), x))
    s.sendall(b"".join(parts))
    f = s.makefile("rb")
    out = [_resp_read(f) for _ in cmds]
    s.close()
    return out


RAW_ENV = None  # the operator's Redis credentials, set once the cluster runs


def raw(*a):
    """The median of 3 reads of the whole backlog (each with a group of its
    own): one read of 1M messages lasts ~0.3 s, short enough for a moment of
    contention on 2 cores to halve it."""
    rates = []
    for _ in range(3):
        p = subprocess.run([RAW] + [str(x) for x in a], capture_output=True, text=True,
                           env=RAW_ENV)
        if p.returncode != 0:
            print("raw %s: %s %s" % (a[0], p.stdout.strip(), p.stderr.strip()), file=sys.stderr)
        rates.append(json.loads(p.stdout)["msgs_per_s"])
        time.sleep(1.1)  # a new group name (it carries the second)
    print("raw %s reads: %s" % (a[0], " ".join("%.0f" % x for x in rates)), file=sys.stderr)
    return statistics.median(rates)


def kv(d):
    return [{"key": k, "value": v} for k, v in d.items()]


P = args.partitions
topics = ["ev%d:%d" % (r, P) for r in range(args.runs)]
runs = []
with Cluster("benchtrig", trigger_daemons=1, kafka_mock=True, kafka_topics=topics,
             trigger_args=args.trigger_arg) as c:
    c.create_namespace("guest")
    auth = c.create_key("guest")
    c.grant_kafka("guest")  # the mock broker is outside the cluster
    RAW_ENV = c.common_env()
    time.sleep(0.3)
    lines = [b"%08d-%s" % (i, b"x" * 190) for i in range(N)]
    payload = b"\n".join(lines) + b"\n"
    for r in range(args.runs):
        res = {"run": r + 1, "load_before": os.getloadavg()[0]}
        # every backlog in place before anything consumes
        subprocess.run(["kcat", "-P", "-b", c.kafka_bootstrap, "-t", "ev%d" % r, "-X",
                        "sticky.partitioning.linger.ms=0", "-X", "linger.ms=5"],
                       input=payload, check=True)
        if not args.skip_stream:
            # the feed's "sev<r>" is the namespace's key gust:state:guest:sev<r>
            for s in ("sraw%d" % r, "gust:state:guest:sev%d" % r):
                for i in range(0, N, 5000):
                    pipeline(c, [["XADD", s, "*", "v", x] for x in lines[i:i + 5000]])
        action = "count%d" % r
        c.api("PUT", "/api/v1/namespaces/_/actions/" + action,
              {"exec": {"kind": args.kind, "code": ACTIONS[args.kind]}}, auth)
        # --- Kafka: raw, then through Gust ---
        res["kafka_raw_msgs_s"] = raw("kafka", c.kafka_bootstrap, "ev%d" % r, N)
        cpu0 = cpu_snapshot()
        perf = None
        if args.perf:
            perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-o",
                                     "%s.%d" % (args.perf, r + 1)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c.api("PUT", "/api/v1/namespaces/_/triggers/kt%d" % r, {
            "annotations": [{"key": "feed", "value": "kafka"}],
            "parameters": kv({"brokers": c.kafka_bootstrap, "topic": "ev%d" % r,
                              "batchSize": args.batch, "maxWaitMs": 20})}, auth)
        c.api("PUT", "/api/v1/namespaces/_/rules/kr%d" % r,
              {"trigger": "/_/kt%d" % r, "action": "/_/" + action}, auth)
        res["kafka_gust_msgs_s"], res["kafka_first_fire_s"] = drain(c, action, N)
        cpu1 = cpu_snapshot()
        res["kafka_cpu_s"] = cpu_used(cpu0, cpu1)
        res["kafka_page_faults"] = cpu_used(cpu0, cpu1, 2, None)
        if perf:
            perf.send_signal(2)
            perf.wait()
        c.api("DELETE", "/api/v1/namespaces/_/rules/kr%d" % r, auth=auth)
        c.api("DELETE", "/api/v1/namespaces/_/triggers/kt%d" % r, auth=auth)
        res["kafka_ratio"] = res["kafka_gust_msgs_s"] / res["kafka_raw_msgs_s"]
        if not args.skip_stream:
            res["stream_raw_msgs_s"] = raw("stream", "127.0.0.1:%d" % c.redis_port,
                                           "sraw%d" % r, N)
            action2 = "scount%d" % r
            c.api("PUT", "/api/v1/namespaces/_/actions/" + action2,
                  {"exec": {"kind": args.kind, "code": ACTIONS[args.kind]}}, auth)
            c.api("PUT", "/api/v1/namespaces/_/triggers/st%d" % r, {
                "annotations": [{"key": "feed", "value": "redis-stream"}],
                "parameters": kv({"stream": "sev%d" % r, "batchSize": args.batch,
                                  "maxWaitMs": 20})}, auth)
            c.api("PUT", "/api/v1/namespaces/_/rules/sr%d" % r,
                  {"trigger": "/_/st%d" % r, "action": "/_/" + action2}, auth)
            res["stream_gust_msgs_s"], res["stream_first_fire_s"] = drain(c, action2, N)
            c.api("DELETE", "/api/v1/namespaces/_/rules/sr%d" % r, auth=auth)
            c.api("DELETE", "/api/v1/namespaces/_/triggers/st%d" % r, auth=auth)
            res["stream_ratio"] = res["stream_gust_msgs_s"] / res["stream_raw_msgs_s"]
        res["load_after"] = os.getloadavg()[0]
        print(json.dumps(res), flush=True)
        runs.append(res)
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]
           if k != "run" and not isinstance(runs[0][k], dict)
           and all(x.get(k) is not None for x in runs)}
    med.update({"n": N, "runs": len(runs), "kind": args.kind, "batchSize": args.batch,
                "partitions": P})
    print(json.dumps({"median": med}, indent=1))
