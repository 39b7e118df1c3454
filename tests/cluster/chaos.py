"""chaos.py - the chaos suite: one fault at a time under steady load, on the
multi-host cluster of netcluster.py (hosts as network namespaces).

Load, all through the gateways from the root namespace, the way a load
balancer would spread it (a gateway that refuses the connection is skipped,
which is safe: nothing was sent):
  - a stream of non-blocking invocations at a fixed rate: every accepted id
    must end with a record (GET /activations/<id>), else it is lost;
  - a few threads of blocking invocations, each answer counted by status;
  - a Kafka feed through the trigger daemons (the hook kafka_feed(), run when
    gust-trigger and gust-kafka-mock are built and can reach each other).

Faults, each repeated --rounds times, the killed process restarted a second
later (as systemd's Restart=always with RestartSec=1 does): SIGKILL of an
invoker, of the leading scheduler, of a gateway, of a trigger daemon; a worker
host cut off (its veth down) for CUT_S and brought back; one etcd member
stopped for CUT_S; the Redis master restarted (appendonly).

For each fault: accepted activations lost (must be 0), duplicates (executions
counted by the invokers' gust_activations_total beyond one per activation),
blocking calls that failed and how, and the time until the cluster serves
normally again. The table is printed, written to --out, and with --doc to
docs/reliability.md's results section.

    chaos.py --short            one round of each fault (tests/run, about 3 min)
    chaos.py --rounds 3 --doc docs/reliability.md      (bench/cluster_chaos)
"""
import argparse
import faulthandler
import collections
import json
import concurrent.futures
import datetime
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netcluster import NetCluster, http, SOURCE  # noqa: E402

ACTION = "import time\ndef main(a):\n    time.sleep(0.02)\n    return {'i': a.get('i')}\n"
NB_RATE = 20        # non-blocking invocations per second
BL_THREADS = 3      # blocking callers
NB_OUTSTANDING = 40  # non-blocking calls in flight at most
WARM_S = 3          # steady load before the fault
AFTER_S = 10        # load after the fault
CUT_S = 5           # how long a host is cut off / an etcd member stopped
SLOW_S = 1.0        # a blocking answer slower than this is not "normal" (warm: ~30 ms)
NORMAL_WITHIN_S = 30


class Load:
    """The steady load of one round; every call is recorded with its times."""

    def __init__(self, c, auth):
        self.c, self.auth = c, auth
        self.gws = [c.gw_url(g) for g in c.gateways]
        self.rr = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.nb = []   # (t0, t1, status, id or None, error)
        self.bl = []   # (t0, t1, status, id or None, error)
        self.threads = []

    def _call(self, blocking, i):
        q = "blocking=true&result=true" if blocking else "blocking=false"
        path = "/api/v1/namespaces/_/actions/chaos?" + q
        with self.lock:
            self.rr += 1
            start = self.rr
        t0 = time.time()
        err = None
        for k in range(len(self.gws)):
            url = self.gws[(start + k) % len(self.gws)]
            try:
                # bounded, so that a hung daemon shows as a failed call, not a hung suite
                st, body, hdr = http("POST", url + path, {"i": i}, self.auth,
                                     timeout=75 if blocking else 20)
                aid = hdr.get("x-openwhisk-activation-id") or hdr.get("X-Openwhisk-Activation-Id")
                if not blocking and isinstance(body, dict):
                    aid = body.get("activationId") or aid
                e = None
                if st >= 400:
                    e = "%d %s" % (st, (body or {}).get("code", "") if isinstance(body, dict) else "")
                return (t0, time.time(), st, aid, e)
            except ConnectionRefusedError as ex:  # nothing was sent: the balancer tries the next
                err = "refused: %s" % ex
                continue
            except OSError as ex:
                reason = getattr(ex, "reason", ex)
                if isinstance(reason, ConnectionRefusedError):
                    err = "refused"
                    continue
                return (t0, time.time(), None, None, type(reason).__name__)
        return (t0, time.time(), None, None, err or "no gateway")

    def _nb_loop(self):
        """A fixed rate, open loop; at most NB_OUTSTANDING calls in flight: a tick
        that finds them all waiting is counted as "client backlog" (the cluster
        is not answering), never queued behind them."""
        period = 1.0 / NB_RATE
        with concurrent.futures.ThreadPoolExecutor(max_workers=NB_OUTSTANDING) as ex:
            futs, i, nxt = [], 0, time.time()
            busy = [0]
            lock = threading.Lock()

            def one(k):
                try:
                    return self._call(False, k)
                finally:
                    with lock:
                        busy[0] -= 1
            while not self.stop_ev.is_set():
                with lock:
                    full = busy[0] >= NB_OUTSTANDING
                    if not full:
                        busy[0] += 1
                if full:
                    t = time.time()
                    self.nb.append((t, t, None, None, "client backlog"))
                else:
                    futs.append(ex.submit(one, i))
                i += 1
                nxt += period
                time.sleep(max(0, nxt - time.time()))
            for f in futs:
                self.nb.append(f.result())

    def _bl_loop(self, n):
        i = 0
        while not self.stop_ev.is_set():
            r = self._call(True, 1000000 * (n + 1) + i)
            with self.lock:
                self.bl.append(r)
            i += 1

    def start(self):
        self.threads = [threading.Thread(target=self._nb_loop)]
        self.threads += [threading.Thread(target=self._bl_loop, args=(n,)) for n in range(BL_THREADS)]
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join()


class ExecCounter:
    """Sums gust_activations_total over the invokers, sampled every 0.2 s so that
    a restarted invoker's counter (back at 0) is added, not subtracted. What a
    killed invoker ran in its last 0.2 s is not seen: duplicates are a lower
    bound for the invoker-kill fault."""

    def __init__(self, c):
        self.c = c
        self.last = {}
        self.total = 0.0
        self.started = False
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def sample(self):
        with self.lock:
            for name in list(self.c.invokers):
                p = self.c.procs.get(name)
                if p is None or p.p is None:
                    continue
                v = self.c.metric(self.c.inv_url(name), "gust_activations_total")
                if v is None:
                    continue
                key = (name, p.p.pid)  # a restarted invoker counts from 0 again
                prev = self.last.get(key)
                if prev is None:
                    prev = 0 if self.started else v
                self.total += v - prev
                self.last[key] = v
            self.started = True

    def _run(self):
        while not self.stop_ev.is_set():
            self.sample()
            time.sleep(0.2)


KFEED_ACTION = ("def main(a):\n"
                "    return {'seen': [[m.get('partition'), m.get('offset'), m.get('value')]\n"
                "                     for m in a.get('messages', [])]}\n")
KAFKA_TOPIC = "chaosfeed"
KAFKA_RATE = 20      # messages produced per second during a round
KAFKA_WAIT_S = 60    # how long a round waits for every produced message to arrive


class KafkaFeed:
    """The Kafka half of the load. A trigger with a kafka feed on KAFKA_TOPIC
    (run by whichever trigger daemon claims it) and a rule to the action kfeed,
    which returns [partition, offset, value] of every message it was given.
    Each round, kcat in the broker's host namespace produces KAFKA_RATE
    messages/s whose values are "<round>-<seq>-<produce time ms>"; afterwards
    the kfeed records in Redis are scanned for them: a value never seen is
    missing, a value seen twice is a duplicate (an at-least-once redelivery)."""

    def __init__(self, c, auth):
        self.c, self.auth = c, auth
        self.counts = collections.Counter()   # value -> times seen in records
        self.first = {}                       # value -> earliest record start (ms)
        self.seen_ids = set()
        self.kfeed_starts = {}                # activation id -> start ms
        self.t_scan_from = time.time() - 60
        gw = c.gw_url(c.gateways[0])
        st, b, _ = http("PUT", gw + "/api/v1/namespaces/_/actions/kfeed?overwrite=true",
                        {"exec": {"kind": "python:3", "code": KFEED_ACTION}}, auth)
        assert st == 200, (st, b)
        params = {"brokers": c.kafka_bootstrap, "topic": KAFKA_TOPIC, "batchSize": 50,
                  "maxWaitMs": 50, "startFrom": "earliest"}
        st, b, _ = http("PUT", gw + "/api/v1/namespaces/_/triggers/kfeed-trigger?overwrite=true",
                        {"annotations": [{"key": "feed", "value": "kafka"}],
                         "parameters": [{"key": k, "value": v} for k, v in params.items()]}, auth)
        assert st == 200, (st, b)
        st, b, _ = http("PUT", gw + "/api/v1/namespaces/_/rules/kfeed-rule?overwrite=true",
                        {"trigger": "/_/kfeed-trigger", "action": "/_/kfeed"}, auth)
        assert st == 200, (st, b)
        end = time.time() + 20
        while time.time() < end and not self.owner():
            time.sleep(0.2)
        if not self.owner():
            raise RuntimeError("no trigger daemon claimed the kafka feed")
        # One message through end to end before the rounds start.
        self.rnd, self.produced, self.proc, self.thread = "warm", [], None, None
        self.start("warm")
        time.sleep(0.5)
        self.stop()
        missing, _, _ = self.check(30)
        if missing:
            raise RuntimeError("the kafka feed delivered nothing within 30 s")

    def owner(self):
        v = self.c.etcd_get("/gust/feed-owners/guest/kfeed-trigger")
        try:
            return json.loads(v).get("owner") if v else None
        except ValueError:
            return None

    def start(self, rnd):
        self.rnd, self.produced = rnd, []
        self.t_scan_from = time.time() - 60  # records start after their message was produced
        self.stop_ev = threading.Event()
        self.proc = self.c.in_host("store3", ["kcat", "-P", "-b", self.c.kafka_bootstrap,
                                              "-t", KAFKA_TOPIC],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        self.thread = threading.Thread(target=self._produce)
        self.thread.start()

    def _produce(self):
        period, seq, nxt = 1.0 / KAFKA_RATE, 0, time.time()
        try:
            while not self.stop_ev.is_set():
                v = "%s-%d-%d" % (self.rnd, seq, int(time.time() * 1000))
                self.proc.stdin.write((v + "\n").encode())
                self.proc.stdin.flush()
                self.produced.append(v)
                seq += 1
                nxt += period
                time.sleep(max(0, nxt - time.time()))
        except OSError as e:
            self.produce_error = "kcat: %s" % e

    def stop(self):
        """Stops producing; kcat flushes what it has and exits (0: every message
        was acknowledged by the broker)."""
        self.produce_error = None
        self.stop_ev.set()
        self.thread.join()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
            if self.proc.returncode != 0:
                self.produce_error = "kcat exited %d: %s" % (
                    self.proc.returncode, self.proc.stderr.read().decode(errors="replace")[-300:])
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.produce_error = "kcat did not finish within 30 s"
        self.proc.stderr.close()

    def scan(self):
        """Reads the kfeed records not read yet (the namespace's index in Redis)."""
        try:
            ids = self.c.redis("ZRANGEBYSCORE", "gust:acts:guest",
                               int((self.t_scan_from) * 1000), "+inf") or []
        except (OSError, RuntimeError):
            return
        new = [i for i in ids if i not in self.seen_ids]
        for k in range(0, len(new), 500):
            chunk = new[k:k + 500]
            try:
                raws = self.c.redis("MGET", *[b"gust:act:" + x for x in chunk])
            except (OSError, RuntimeError):
                return
            for aid, raw in zip(chunk, raws):
                rec = json.loads(raw) if raw else None
                if rec is None:
                    continue  # the index is written after the record: not yet
                self.seen_ids.add(aid)
                result = (rec.get("response") or {}).get("result")
                if rec.get("name") != "kfeed" or not isinstance(result, dict) \
                        or "seen" not in result:
                    continue  # not the action's record (the trigger's has another name)
                self.kfeed_starts[aid] = rec.get("start", 0)
                for m in result["seen"]:
                    v = m[2]
                    self.counts[v] += 1
                    self.first[v] = min(self.first.get(v, 1e18), rec.get("start", 0))

    def check(self, timeout):
        """(missing, duplicates, slowest delivery s) of this round's messages,
        waiting up to timeout for the missing ones."""
        end = time.time() + timeout
        while True:
            self.scan()
            missing = [v for v in self.produced if not self.counts[v]]
            if not missing or time.time() >= end:
                break
            time.sleep(0.5)
        dups = sum(self.counts[v] - 1 for v in self.produced if self.counts[v] > 1)
        delays = [(self.first[v] - int(v.rsplit("-", 1)[1])) / 1000.0
                  for v in self.produced if v in self.first]
        return missing, dups, max(delays) if delays else 0.0

    def activations_between(self, t0, t1):
        return sum(1 for s in self.kfeed_starts.values() if t0 * 1000 <= s <= t1 * 1000)


def wait_records(c, auth, ids, timeout):
    missing = set(ids)
    gw = c.gw_url(c.gateways[0])
    end = time.time() + timeout
    while missing and time.time() < end:
        for aid in list(missing):
            try:
                for g in c.gateways:
                    st, _, _ = http("GET", c.gw_url(g) + "/api/v1/namespaces/_/activations/" + aid,
                                    auth=auth, timeout=5)
                    if st == 200:
                        missing.discard(aid)
                    if st is not None:
                        break
            except OSError:
                pass
        if missing:
            time.sleep(0.5)
    del gw
    return missing


PROBES = [0]  # probe calls answered 200: executions that are not duplicates
FEED = [None]  # the KafkaFeed of the cluster, when it runs


def serves_normally(c, auth):
    """Every gateway answers a blocking call quickly and the leader knows every invoker."""
    for g in c.gateways:
        try:
            t0 = time.time()
            st, _, _ = http("POST", c.gw_url(g) + "/api/v1/namespaces/_/actions/chaos?blocking=true&result=true",
                            {"i": -1}, auth, timeout=10)
            PROBES[0] += st == 200
            if st != 200 or time.time() - t0 > SLOW_S:
                return False
        except OSError:
            return False
    lead = c.leader()
    return bool(lead) and c.health(c.sched_url(lead)).get("invokers", 0) >= len(c.invokers)


# --- the faults: each returns (what was done, a function that undoes it) ------
def _kill(c, name):
    c.procs[name].kill()

    def undo():
        time.sleep(1.0)
        c.restart(name)
    return "SIGKILL " + name, undo


def fault_invoker_kill(c, rnd):
    return _kill(c, c.invokers[rnd % len(c.invokers)])


def fault_leader_kill(c, rnd):
    return _kill(c, c.leader() or c.schedulers[0])


def fault_gateway_kill(c, rnd):
    return _kill(c, c.gateways[rnd % len(c.gateways)])


def fault_trigger_kill(c, rnd):
    """Kills the daemon that runs the Kafka feed (when there is one), so that the
    feed has to move: the next daemon in rank claims it once the dead one's
    lease lapses and resumes from the group's committed offsets."""
    owner = FEED[0].owner() if FEED[0] else None
    return _kill(c, owner if owner in c.triggers else c.triggers[rnd % len(c.triggers)])


def fault_host_cut(c, rnd):
    host = c.hosts["work%d" % (1 + rnd % len(c.invokers))]
    host.cut()

    def undo():
        time.sleep(CUT_S)
        host.restore()
    return "link of %s down %d s" % (host.name, CUT_S), undo


def fault_etcd_stop(c, rnd):
    name = "etcd%d" % (1 + rnd % 3)  # etcd1 first: every daemon prefers the first endpoint
    c.procs[name].stop()

    def undo():
        time.sleep(CUT_S)
        c.restart(name)
    return "%s stopped %d s" % (name, CUT_S), undo


def fault_redis_restart(c, rnd):
    c.procs["redis1"].stop()

    def undo():
        c.restart("redis1")
    return "Redis master restarted", undo


FAULTS = collections.OrderedDict([
    ("invoker SIGKILL", fault_invoker_kill),
    ("leading scheduler SIGKILL", fault_leader_kill),
    ("gateway SIGKILL", fault_gateway_kill),
    ("trigger daemon SIGKILL", fault_trigger_kill),
    ("worker host cut off", fault_host_cut),
    ("etcd member stopped", fault_etcd_stop),
    ("Redis master restarted", fault_redis_restart),
])


def run_round(c, auth, fault, fn, rnd, counter):
    counter.sample()
    exec0, t_exec0 = counter.total, time.time()
    probes0 = PROBES[0]
    t_round = time.time()
    load = Load(c, auth)
    feed = FEED[0]
    if feed:
        feed.start("r%d%s" % (rnd + 1, fault.split()[0][:3]))
    load.start()
    time.sleep(WARM_S)
    counter.sample()  # as close to the fault as can be: a killed invoker's last runs count
    t_fault = time.time()
    what, undo = fn(c, rnd)
    log("fault: %s" % what)
    undo()
    log("undone")
    t_undone = time.time()
    time.sleep(max(0, AFTER_S - (t_undone - t_fault)))
    load.stop()
    if feed:
        feed.stop()
    log("load stopped")

    nb_ids = [r[3] for r in load.nb if r[2] == 202 and r[3]]
    nb_not = [r for r in load.nb if not (r[2] == 202 and r[3])]
    missing = wait_records(c, auth, nb_ids, 60)
    log("records checked: %d missing" % len(missing))
    bl_fail = [r for r in load.bl if r[2] != 200]
    # blocking calls that ran for sure (answered 200), or that have a record
    bl_ran = sum(1 for r in load.bl if r[2] == 200)
    bl_ran += len([r for r in bl_fail if r[3]]) - len(wait_records(c, auth, [r[3] for r in bl_fail if r[3]], 3))
    unknown = sum(1 for r in bl_fail if not r[3])
    k = {}
    if feed:
        kmiss, kdups, kslow = feed.check(KAFKA_WAIT_S)
        k = {"k_produced": len(feed.produced), "k_missing": len(kmiss), "k_dups": kdups,
             "k_slowest": kslow, "k_error": feed.produce_error,
             "k_missing_ex": kmiss[:5], "_produced": list(feed.produced), "_feed": feed,
             "_produced_t0": t_round - 1}
        log("kafka checked: %d produced, %d missing, %d duplicates" % (
            len(feed.produced), len(kmiss), kdups))
    ok_at = None
    end = time.time() + NORMAL_WITHIN_S
    while time.time() < end:
        if serves_normally(c, auth):
            ok_at = time.time()
            break
        time.sleep(0.2)
    time.sleep(1.0)
    counter.sample()
    t_end = time.time()
    execs = counter.total - exec0
    # the feed's activations are executions too, each with its own record
    kacts = feed.activations_between(t_exec0, t_end) if feed else 0
    dups = int(execs - len(set(nb_ids)) - bl_ran - (PROBES[0] - probes0) - kacts)
    after = [r[1] - r[0] for r in load.bl if r[1] >= t_fault and r[2] == 200]
    bl_max = max(after) if after else 0.0
    # time to normal: the end of the last call that failed or was slow, from the fault
    bad_ends = [r[1] for r in load.bl if r[1] >= t_fault and (r[2] != 200 or r[1] - r[0] > SLOW_S)]
    bad_ends += [r[1] for r in nb_not if r[1] >= t_fault]
    ttn = max(bad_ends) - t_fault if bad_ends else 0.0
    if ok_at is None:
        ttn = None
    errors = collections.Counter(r[4] or str(r[2]) for r in bl_fail)
    nb_errors = collections.Counter(r[4] or str(r[2]) for r in nb_not)
    res = {"fault": fault, "round": rnd + 1, "what": what, "accepted": len(nb_ids),
           "not_accepted": len(nb_not), "nb_errors": dict(nb_errors), "lost": len(missing),
           "dups": dups, "unknown": unknown, "blocking": len(load.bl), "bl_failed": len(bl_fail),
           "bl_errors": dict(errors), "ttn": ttn, "executions": int(execs), "bl_max": bl_max,
           "k_acts": kacts}
    res.update(k)
    print("  %-26s r%d %-28s accepted %4d lost %d dups %3d | blocking %4d failed %3d %s | "
          "not accepted %d %s | slowest OK %.1f s | normal after %s" % (
              fault, rnd + 1, what, res["accepted"], res["lost"], dups, res["blocking"],
              res["bl_failed"], dict(errors) or "", res["not_accepted"], dict(nb_errors) or "",
              bl_max,
              "%.1f s" % ttn if ttn is not None else "NEVER"), flush=True)
    if k:
        print("  %-26s    kafka: produced %d missing %d dups %d slowest delivery %.1f s%s" % (
            "", k["k_produced"], k["k_missing"], k["k_dups"], k["k_slowest"],
            " (%s)" % k["k_error"] if k["k_error"] else ""), flush=True)
    return res


def log(msg):
    print("    %s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def fmt_errors(d):
    return ", ".join("%d× %s" % (n, e) for e, n in sorted(d.items(), key=lambda x: -x[1])) or "—"


def table(results, mode):
    lines = ["| fault | rounds | accepted | lost | duplicates | blocking calls | failed: with | slowest answered (s) | not accepted (non-blocking): with | serves normally after (max) | Kafka produced | Kafka missing | Kafka duplicates | Kafka slowest delivery (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by = collections.OrderedDict()
    for r in results:
        by.setdefault(r["fault"], []).append(r)
    for fault, rs in by.items():
        if rs[0].get("skipped"):
            lines.append("| %s | — | not run: %s | | | | | | | | | | | |" % (fault, rs[0]["skipped"]))
            continue
        errs, nerrs = collections.Counter(), collections.Counter()
        for r in rs:
            errs.update(r["bl_errors"])
            nerrs.update(r["nb_errors"])
        ttns = [r["ttn"] for r in rs]
        if all("k_produced" in r for r in rs):
            kafka = "%d | **%d** | %d | %.1f" % (
                sum(r["k_produced"] for r in rs), sum(r["k_missing"] for r in rs),
                sum(r["k_dups"] for r in rs), max(r["k_slowest"] for r in rs))
        else:
            kafka = "not run | | |"
        lines.append("| %s | %d | %d | **%d** | %d | %d | %d: %s | %.1f | %d: %s | %s | %s |" % (
            fault, len(rs), sum(r["accepted"] for r in rs), sum(r["lost"] for r in rs),
            sum(r["dups"] for r in rs), sum(r["blocking"] for r in rs),
            sum(r["bl_failed"] for r in rs), fmt_errors(errs), max(r["bl_max"] for r in rs),
            sum(r["not_accepted"] for r in rs), fmt_errors(nerrs),
            "never (within %d s)" % NORMAL_WITHIN_S if None in ttns else "%.1f s" % max(ttns),
            kafka))
    return "\n".join(lines)


def recount_kafka(results, feed):
    """Duplicates that arrived after their round was checked (a redelivery
    late behind a moved feed) are added before the cluster goes."""
    if not feed:
        return
    feed.t_scan_from = min(r["_produced_t0"] for r in results if r.get("_feed") is feed) \
        if any(r.get("_feed") is feed for r in results) else time.time()
    feed.scan()
    for r in results:
        if r.get("_feed") is feed:
            r["k_dups"] = sum(feed.counts[v] - 1 for v in r["_produced"] if feed.counts[v] > 1)


def write_doc(path, text):
    begin, end = "<!-- chaos-results:begin -->", "<!-- chaos-results:end -->"
    with open(path) as f:
        doc = f.read()
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin) + len(begin)] + "\n" + text + "\n" + doc[doc.index(end):]
    else:
        doc += "\n%s\n%s\n%s\n" % (begin, text, end)
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true", help="one round of each fault")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--faults", default="", help="comma-separated substrings of fault names")
    ap.add_argument("--out", default="", help="write the table here")
    ap.add_argument("--doc", default="", help="replace the results section of this file")
    args = ap.parse_args()
    rounds = 1 if args.short else args.rounds
    faults = [f for f in FAULTS if not args.faults or any(s in f for s in args.faults.split(","))]

    # ctest and timeout(1) end a run with SIGTERM: unwind, so that the cluster's
    # teardown (a finally) still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    faulthandler.register(signal.SIGUSR1)  # kill -USR1: where is every thread
    results = []
    t_start = time.time()
    feed = None

    def up():
        c = NetCluster("chaos", invokers=3, kafka_topics=[KAFKA_TOPIC + ":2"])
        c.__enter__()
        try:
            c.create_namespace("guest")
            auth = c.create_key("guest")
            time.sleep(0.5)
            st, b, _ = http("PUT", c.gw_url(c.gateways[0]) +
                            "/api/v1/namespaces/_/actions/chaos?overwrite=true",
                            {"exec": {"kind": "python:3", "code": ACTION}}, auth)
            assert st == 200, (st, b)
            for _ in range(50):
                if serves_normally(c, auth):
                    break
                time.sleep(0.2)
            FEED[0] = None
            if c.triggers and c.kafka_bootstrap and shutil.which("kcat"):
                c.grant_kafka("guest")  # the broker is outside the cluster
                FEED[0] = KafkaFeed(c, auth)
        except BaseException:
            c.__exit__(*sys.exc_info())
            raise
        return c, auth

    c, auth = up()
    try:
        feed = FEED[0]
        print("cluster up: %d hosts, %d invokers, etcd %s; Kafka feed: %s" % (
            len(c.hosts), len(c.invokers), c.etcd_endpoints,
            "on (broker %s on store3, relayed; feed run by %s)" % (c.kafka_bootstrap, feed.owner())
            if feed else "not run (gust-trigger, gust-kafka-mock or kcat missing)"), flush=True)
        counter = ExecCounter(c)
        for fault in faults:
            if fault == "trigger daemon SIGKILL" and not c.triggers:
                results.append({"fault": fault, "skipped": "gust-trigger is not built yet"})
                print("  %-26s not run: gust-trigger is not built yet" % fault, flush=True)
                continue
            for rnd in range(rounds):
                r = run_round(c, auth, fault, FAULTS[fault], rnd, counter)
                results.append(r)
                if r["ttn"] is None:
                    # The cluster did not heal by itself: say which daemon does not
                    # answer, keep its log, and go on with a fresh cluster so that
                    # every fault is measured on a healthy one.
                    for name in c.schedulers:
                        print("    %s /health: %s" % (name, c.health(c.sched_url(name)) or "no answer"))
                    c.dump_logs(12)
                    recount_kafka(results, FEED[0])
                    counter.stop_ev.set()
                    c.__exit__(None, None, None)
                    c, auth = up()
                    counter = ExecCounter(c)
        counter.stop_ev.set()
        recount_kafka(results, FEED[0])
    finally:
        c.__exit__(None, None, None)
    try:
        commit = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    head = ("%s run, %d round(s) of each fault, commit %s, %s, %.0f s; load: %d non-blocking/s and "
            "%d blocking callers through 2 gateways; 3 invokers, 2 schedulers, 3 etcd members, "
            "Redis master + replica. Kafka feed: %s." % (
                "Short" if args.short else "Full", rounds, commit or "?",
                datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), time.time() - t_start,
                NB_RATE, BL_THREADS,
                ("%d messages/s by kcat into a 2-partition topic of gust-kafka-mock on store3 (relayed "
                 "to the trigger hosts by tests/cluster/tcprelay.py), a feed trigger run by one of 2 "
                 "trigger daemons, a rule to an action that returns the offsets and values it got"
                 % KAFKA_RATE) if feed else "not run"))
    text = head + "\n\n" + table(results, "short" if args.short else "full")
    print("\n" + text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.doc:
        write_doc(args.doc, text)
    ran = [r for r in results if not r.get("skipped")]
    bad = [r for r in ran if r["lost"] or r["ttn"] is None or r.get("k_missing")]
    for r in bad:
        print("FAIL %s round %d: lost %d, normal after %s, kafka missing %s %s" % (
            r["fault"], r["round"], r["lost"], r["ttn"], r.get("k_missing"),
            r.get("k_missing_ex", "")))
    print("%d passed, %d failed" % (len(ran) - len(bad), len(bad)))
    sys.exit(1 if bad or not ran else 0)


if __name__ == "__main__":
    main()
