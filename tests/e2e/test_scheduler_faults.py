"""Issue 5's fault tests: under a steady stream of non-blocking invocations the
leading scheduler is SIGKILLed, then an invoker; every accepted activation must
complete (its record in Redis), duplicates are counted and reported; blocking
callers of a killed invoker get a clear 502; a new invoker gets work; each
namespace limit answers 429."""
import concurrent.futures
import threading
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

COUNT = "def main(a):\n    return {'i': a.get('i')}\n"
SLOW = "import time\ndef main(a):\n    time.sleep(a.get('s', 1.5))\n    return {'i': a.get('i')}\n"

c = Cluster("faults", invokers=2, schedulers=2).__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    time.sleep(0.3)

    def put(name, code, **extra):
        body = {"exec": {"kind": "python:3", "code": code}}
        body.update(extra)
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body, AUTH)
        assert st == 200, (st, b)

    def invoke(name, params, blocking, auth=AUTH, timeout=70):
        q = "blocking=true&result=true" if blocking else "blocking=false"
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?%s" % (name, q), params, auth,
                     timeout=timeout)

    def record(aid, auth=AUTH):
        st, body, _ = c.api("GET", "/api/v1/namespaces/_/activations/" + aid, auth=auth)
        return body if st == 200 else None

    def executions():
        total = 0
        for i in range(len(c.inv_metrics)):
            p = c.procs.get("invoker%d" % i)
            if p and p.alive():
                total += c.metric(c.inv_metrics[i], "gust_activations_total") or 0
        return total

    def stream(name, n, rate, ids, refused, stop_early=None):
        """n non-blocking invocations at `rate` per second; accepted ids are
        collected, anything else counted as refused (never accepted)."""
        period = 1.0 / rate
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
            futs = []
            for i in range(n):
                futs.append(ex.submit(invoke, name, {"i": i}, False))
                time.sleep(period)
            for f in futs:
                st, body, _ = f.result()
                if st == 202 and isinstance(body, dict) and body.get("activationId"):
                    ids.append(body["activationId"])
                else:
                    refused.append((st, body))

    def all_complete(ids, timeout, auth=AUTH):
        missing = set(ids)
        end = time.time() + timeout
        while missing and time.time() < end:
            for aid in list(missing):
                if record(aid, auth):
                    missing.discard(aid)
            if missing:
                time.sleep(0.5)
        return missing

    @case
    def leader_killed_under_stream():
        put("count", COUNT)
        check("warm-up", invoke("count", {"i": -1}, True)[0] == 200)
        before = executions()
        leader = c.leader()
        check("a scheduler leads", leader is not None, leader)
        ids, refused = [], []
        t = threading.Thread(target=stream, args=("count", 240, 60, ids, refused))
        t.start()
        time.sleep(1.5)
        t_kill = time.time()
        c.procs[leader].kill()
        new = wait_until(lambda: c.leader() if c.leader() not in (None, leader) else None,
                         timeout=10, interval=0.05)
        failover = time.time() - t_kill
        check("a standby takes over within 3 s", new is not None and failover < 3.5,
              (new, round(failover, 2)))
        t.join()
        print("accepted %d, refused %d, failover %.2f s" % (len(ids), len(refused), failover))
        check("the stream was accepted", len(ids) >= 200, (len(ids), refused[:3]))
        missing = all_complete(ids, 40)
        check("every accepted activation completed (none missing)", not missing,
              "%d missing of %d" % (len(missing), len(ids)))
        dups = executions() - before - len(set(ids))
        print("duplicates (executions beyond one per accepted id): %d" % dups)
        check("duplicates counted (not negative)", dups >= 0, dups)
        c.start_scheduler(leader)  # back as a standby for the next cases

    @case
    def invoker_killed_mid_run():
        # 512 MB each: four fill an invoker's 2048 MB, so eight run on both.
        put("slow", SLOW, limits={"memory": 512, "timeout": 20000})
        check("warm-up slow", invoke("slow", {"s": 0}, True)[0] == 200)
        ids, refused = [], []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            futs = [ex.submit(invoke, "slow", {"s": 2.0, "i": i}, True) for i in range(8)]
            time.sleep(0.8)
            for i in range(6):
                st, body, _ = invoke("slow", {"s": 0.2, "i": 100 + i}, False)
                if st == 202:
                    ids.append(body["activationId"])
            c.procs["invoker0"].kill()
            res = [f.result() for f in futs]
        codes = sorted(st for st, _, _ in res)
        print("blocking answers:", codes)
        check("every blocking call was answered 200 or 502", all(s in (200, 502) for s in codes), codes)
        bad = [b for st, b, _ in res if st == 502]
        check("the killed invoker's blocking callers got 502", len(bad) >= 1, codes)
        check("with a clear error", all(isinstance(b, dict) and "invoker" in str(b.get("error", "")) for b in bad), bad[:2])
        check("the other invoker's callers got their result", codes.count(200) >= 1, codes)
        missing = all_complete(ids, 40)
        check("its non-blocking activations completed elsewhere", not missing and len(ids) == 6,
              (len(missing), len(ids)))

    @case
    def new_invoker_gets_work():
        c.start_invoker(2)
        ok = wait_until(lambda: (c.sched_health(c.leader() or "scheduler").get("invokers") or 0) >= 2,
                        timeout=10)
        check("the new invoker joins placement", ok)
        # actions spread over invokers by rendezvous hashing: some land on the new one
        for k in range(12):
            put("spread%d" % k, COUNT)
            st, _, _ = invoke("spread%d" % k, {"i": k}, True)
            check("spread%d ran" % k, st == 200, st)
        ran = c.metric(c.inv_metrics[2], "gust_activations_total")
        print("activations on the new invoker: %s" % ran)
        check("the new invoker ran activations", (ran or 0) > 0, ran)

    @case
    def fair_share_between_namespaces():
        # "flood" queues a long backlog; "quiet" must not wait behind all of it.
        c.create_namespace("flood")
        c.create_namespace("quiet")
        flood, quiet = c.create_key("flood"), c.create_key("quiet")
        time.sleep(0.4)
        for auth in (flood, quiet):
            st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/slow?overwrite=true",
                             {"exec": {"kind": "python:3", "code": SLOW},
                              "limits": {"memory": 512}}, auth)
            check("slow created", st == 200, (st, b))
        ids = []
        for i in range(120):
            st, body, _ = invoke("slow", {"s": 0.25, "i": i}, False, flood)
            if st == 202:
                ids.append(body["activationId"])
        check("the flood was accepted", len(ids) == 120, len(ids))
        st, body, _ = invoke("slow", {"s": 0, "i": 7}, True, quiet)
        done = sum(1 for aid in ids if c.api("GET", "/api/v1/namespaces/_/activations/" + aid, auth=flood)[0] == 200)
        print("quiet answered while %d of %d flood activations had completed" % (done, len(ids)))
        check("the quiet namespace is served before the flood drains", st == 200 and done < len(ids) * 3 // 4,
              (st, done))
        missing = all_complete(ids, 60, flood)
        check("and the flood completes", not missing, len(missing))

    @case
    def namespace_limits():
        c.create_namespace("tight", {"concurrentInvocations": 2, "invocationsPerMinute": 5})
        tight = c.create_key("tight")
        time.sleep(0.4)
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/slow", {"exec": {"kind": "python:3", "code": SLOW}}, tight)
        check("tight action created", st == 200, (st, b))
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
            futs = [ex.submit(invoke, "slow", {"s": 1.5}, True, tight) for _ in range(3)]
            res = [f.result() for f in futs]
        codes = sorted(st for st, _, _ in res)
        over = [b for st, b, _ in res if st == 429]
        check("over the concurrency limit: 429", codes.count(429) == 1 and codes.count(200) == 2, codes)
        check("with a clear message", over and "concurrent" in over[0].get("error", ""), over)
        codes = [invoke("slow", {"s": 0}, True, tight)[0] for _ in range(4)]
        st, body, _ = invoke("slow", {"s": 0}, True, tight)
        check("over the per-minute limit: 429", st == 429 and "minute" in body.get("error", ""), (codes, st, body))
        st, body, _ = invoke("slow", {"s": 0}, False, tight)
        check("non-blocking over the limit: 429 too", st == 429, (st, body))
        st, body, _ = invoke("count", {"i": 1}, True)
        check("another namespace is not affected", st == 200, (st, body))
    @case
    def invoker_drains_on_sigterm():
        # A rolling restart: SIGTERM takes the invoker out of placement, and
        # the activations it already has finish and answer their callers.
        import signal as _signal
        put("drainme", SLOW, limits={"timeout": 20000})
        alive = [n for n in ("invoker1", "invoker2") if c.procs.get(n) and c.procs[n].alive()]
        # pin the work to one invoker: stop the others from taking it
        res = []

        def one(i):
            res.append(invoke("drainme", {"s": 1.5, "i": i}, True)[:2])
        check("warm-up drainme", invoke("drainme", {"s": 0}, True)[0] == 200)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        [t.start() for t in ts]
        time.sleep(0.5)
        for n in alive:
            c.procs[n].p.send_signal(_signal.SIGTERM)
        [t.join() for t in ts]
        codes = sorted(st for st, _ in res)
        check("callers of draining invokers got their results", codes == [200, 200, 200], res)
        for n in alive:
            rc = c.procs[n].p.wait(40)
            check("%s exited cleanly after draining" % n, rc == 0, rc)

finally:
    c.__exit__(None, None, None)
finish()
