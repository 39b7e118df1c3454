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
import concurrent.futures
import datetime
import os
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


def kafka_feed(c):
    """The hook for the Kafka half of the load: produce to a topic bound by a
    rule to the chaos action through the trigger daemons, and count what the
    consumer group turned into activations. Returns None (not run) until
    gust-trigger and a broker reachable from the ctl hosts exist."""
    if not c.triggers or not c.kafka_bootstrap:
        return None
    # gust-kafka-mock listens on store3's loopback only (librdkafka's mock
    # cluster cannot bind an address); the trigger daemons on ctl1/ctl2 cannot
    # reach it until it can. See docs/reliability.md.
    return None


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
    return _kill(c, c.triggers[rnd % len(c.triggers)])


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
    exec0 = counter.total
    probes0 = PROBES[0]
    load = Load(c, auth)
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
    ok_at = None
    end = time.time() + NORMAL_WITHIN_S
    while time.time() < end:
        if serves_normally(c, auth):
            ok_at = time.time()
            break
        time.sleep(0.2)
    time.sleep(1.0)
    counter.sample()
    execs = counter.total - exec0
    dups = int(execs - len(set(nb_ids)) - bl_ran - (PROBES[0] - probes0))
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
           "bl_errors": dict(errors), "ttn": ttn, "executions": int(execs), "bl_max": bl_max}
    print("  %-26s r%d %-28s accepted %4d lost %d dups %3d | blocking %4d failed %3d %s | "
          "not accepted %d %s | slowest OK %.1f s | normal after %s" % (
              fault, rnd + 1, what, res["accepted"], res["lost"], dups, res["blocking"],
              res["bl_failed"], dict(errors) or "", res["not_accepted"], dict(nb_errors) or "",
              bl_max,
              "%.1f s" % ttn if ttn is not None else "NEVER"), flush=True)
    return res


def log(msg):
    print("    %s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def fmt_errors(d):
    return ", ".join("%d× %s" % (n, e) for e, n in sorted(d.items(), key=lambda x: -x[1])) or "—"


def table(results, mode):
    lines = ["| fault | rounds | accepted | lost | duplicates | blocking calls | failed: with | slowest answered (s) | not accepted (non-blocking): with | serves normally after (max) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by = collections.OrderedDict()
    for r in results:
        by.setdefault(r["fault"], []).append(r)
    for fault, rs in by.items():
        if rs[0].get("skipped"):
            lines.append("| %s | — | not run: %s | | | | | | | |" % (fault, rs[0]["skipped"]))
            continue
        errs, nerrs = collections.Counter(), collections.Counter()
        for r in rs:
            errs.update(r["bl_errors"])
            nerrs.update(r["nb_errors"])
        ttns = [r["ttn"] for r in rs]
        lines.append("| %s | %d | %d | **%d** | %d | %d | %d: %s | %.1f | %d: %s | %s |" % (
            fault, len(rs), sum(r["accepted"] for r in rs), sum(r["lost"] for r in rs),
            sum(r["dups"] for r in rs), sum(r["blocking"] for r in rs),
            sum(r["bl_failed"] for r in rs), fmt_errors(errs), max(r["bl_max"] for r in rs),
            sum(r["not_accepted"] for r in rs), fmt_errors(nerrs),
            "never (within %d s)" % NORMAL_WITHIN_S if None in ttns else "%.1f s" % max(ttns)))
    return "\n".join(lines)


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
        c = NetCluster("chaos", invokers=3)
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
        except BaseException:
            c.__exit__(*sys.exc_info())
            raise
        return c, auth

    c, auth = up()
    try:
        feed = kafka_feed(c)
        print("cluster up: %d hosts, %d invokers, etcd %s; Kafka feed: %s" % (
            len(c.hosts), len(c.invokers), c.etcd_endpoints,
            "on" if feed else "not run (no gust-trigger/broker reachable across hosts)"), flush=True)
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
                    counter.stop_ev.set()
                    c.__exit__(None, None, None)
                    c, auth = up()
                    counter = ExecCounter(c)
        counter.stop_ev.set()
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
                NB_RATE, BL_THREADS, "on" if feed else "not run"))
    text = head + "\n\n" + table(results, "short" if args.short else "full")
    print("\n" + text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.doc:
        write_doc(args.doc, text)
    ran = [r for r in results if not r.get("skipped")]
    bad = [r for r in ran if r["lost"] or r["ttn"] is None]
    for r in bad:
        print("FAIL %s round %d: lost %d, normal after %s" % (r["fault"], r["round"], r["lost"], r["ttn"]))
    print("%d passed, %d failed" % (len(ran) - len(bad), len(bad)))
    sys.exit(1 if bad or not ran else 0)


if __name__ == "__main__":
    main()
