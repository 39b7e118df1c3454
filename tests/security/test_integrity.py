"""Issue 13, point 2: internal data is verified where it is used.

Attack "run her code as bob": whoever can write into Redis (a tenant path that
reaches the cluster's Redis: a feed's dead-letter stream, a binding) or reach a
daemon's nng socket (since issue 14 only with a certificate of a role allowed
there: test_planes.py) writes an ActivationRequest naming bob's action, bob's code
and alice's params. The journal replay and the invoker must refuse it (no run,
no record, an ERROR and a metric), while legitimate activations, replayed after
a scheduler is killed, still run.

The MACs are recomputed here with Python's hmac module, as gust/integrity.h and
common/integrity.c specify them: the test reads the cluster secret from etcd
(as an operator could) only to show that a correctly signed request is run and
that a correctly signed one with another namespace's code is still refused."""
import base64
import hashlib
import hmac
import json
import os
import struct
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish
from sp import areq_mac, encode_request, request, request_fields, tls_context

SPY = "def main(a):\n    return {'got': a}\n"

EPERM = 7


def journal_mac(key, aid, r):
    def s(v):
        v = v if isinstance(v, bytes) else v.encode()
        return struct.pack(">Q", len(v)) + v
    return hmac.new(key, b"gust-journal-v1\x00" + s(aid) + s(r), hashlib.sha256).hexdigest()


# --- the nng sockets: with a certificate of the role that may send there ------
def nng_call(url, body, as_role="scheduler", timeout=30):
    """One request to a daemon's nng socket (tests/lib/sp.py) over mutual TLS,
    holding a certificate of as_role from the cluster's PKI: the transport
    admits it, and what is tested here is the MAC behind it."""
    crt, key = c.pki_issue(as_role, "test-" + as_role)
    return request(url, body, tls_context(crt, key), timeout)


def new_id():
    return os.urandom(16).hex()


c = Cluster("integrity", invokers=1).__enter__()
try:
    AUTH = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        AUTH[ns] = c.create_key(ns)
    time.sleep(0.3)

    def put(ns, name, code):
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name,
                         {"exec": {"kind": "python:3", "code": code}}, AUTH[ns])
        assert st == 200, (st, b)

    def invoke(ns, name, params, blocking):
        q = "blocking=true&result=true" if blocking else "blocking=false"
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?%s" % (name, q), params,
                     AUTH[ns])

    def record(ns, aid):
        st, body, _ = c.api("GET", "/api/v1/namespaces/_/activations/" + aid, auth=AUTH[ns])
        return body if st == 200 else None

    def action_rec(ns, name):
        return json.loads(c.etcd_get("/gust/actions/%s/%s" % (ns, name)))

    def inv_runs():
        return c.metric(c.inv_metrics[0], "gust_activations_total") or 0

    def inv_rejected():
        return c.metric(c.inv_metrics[0], "gust_invoker_requests_rejected_total") or 0

    def sched_metric(name):
        return c.metric(c.sched_ports[c.leader() or "scheduler"], name) or 0

    def secret():
        v = c.etcd_get("/gust/cluster/secret")
        return bytes.fromhex(v.split()[0])

    def journal_has(aid):
        for e in c.redis("XRANGE", "gust:journal", "-", "+") or []:
            fields = e[1]
            for k in range(0, len(fields) - 1, 2):
                if fields[k] == b"a" and fields[k + 1] == aid.encode():
                    return True
        return False

    def xadd(*args):
        v = c.redis("XADD", "gust:journal", "*", *args)
        return v.decode() if isinstance(v, bytes) else v

    def in_journal(entry_id):
        return bool(c.redis("XRANGE", "gust:journal", entry_id, entry_id))

    put("bob", "vault", SPY)
    put("alice", "mine", SPY)
    put("carol", "spy", SPY)
    check("bob's action runs for bob (warm-up)",
          invoke("bob", "vault", {"w": 1}, True)[0] == 200)
    check("alice's action runs for alice (warm-up)",
          invoke("alice", "mine", {"w": 1}, True)[0] == 200)

    @case
    def secret_made_at_start():
        v = c.etcd_get("/gust/cluster/secret")
        check("a cluster secret exists in etcd (64 hex digits)",
              v is not None and len(v.split()[0]) == 64, v is not None and len(v))
        out = os.popen("%s admin secret init --etcd %s" % (c.bin("gust"), c.etcd_url)).read()
        check("gust admin secret init keeps the existing secret",
              c.etcd_get("/gust/cluster/secret") == v, out)

    @case
    def forged_journal_entries_are_dropped():
        """alice writes journal entries for bob's action with her params, as a
        feed's dead-letter stream pointed at gust:journal would copy them."""
        rec = action_rec("bob", "vault")
        before_runs, before_rej = inv_runs(), sched_metric("gust_scheduler_journal_rejected_total")
        forged = []
        # 1: no MACs at all (what a copied or hand-made entry has)
        f1 = request_fields(new_id(), "bob", "bob", "vault", rec, {"from": "alice"})
        forged.append((f1["activation_id"],
                       xadd("a", f1["activation_id"],
                               "r", encode_request(f1))))
        # 2: made-up MACs (alice has no secret: her own key, or random bytes)
        f2 = request_fields(new_id(), "bob", "bob", "vault", rec, {"from": "alice"})
        r2 = encode_request(f2, mac=areq_mac(b"alice's own key", f2))
        forged.append((f2["activation_id"],
                       xadd("a", f2["activation_id"], "r", r2,
                            "h", journal_mac(b"alice's own key", f2["activation_id"], r2))))
        # 3: a foreign entry: h of another entry
        f3 = request_fields(new_id(), "bob", "bob", "vault", rec, {"from": "alice"})
        r3 = encode_request(f3, mac=os.urandom(32))
        forged.append((f3["activation_id"],
                       xadd("a", f3["activation_id"], "r", r3,
                               "h", journal_mac(secret(), f2["activation_id"], r2))))
        # 4: the journal MAC right (made with the real secret, as if a scheduler
        # had written it) but the request unsigned: the replay checks both
        f4 = request_fields(new_id(), "bob", "bob", "vault", rec, {"from": "alice"})
        r4 = encode_request(f4)
        forged.append((f4["activation_id"],
                       xadd("a", f4["activation_id"], "r", r4,
                               "h", journal_mac(secret(), f4["activation_id"], r4))))
        gone = wait_until(lambda: not any(in_journal(e) for _, e in forged), 30, 0.2)
        check("every forged journal entry was deleted by the replay", gone,
              [e for _, e in forged if in_journal(e)])
        rej = sched_metric("gust_scheduler_journal_rejected_total")
        check("gust_scheduler_journal_rejected_total rose by 4", rej - before_rej == 4,
              (before_rej, rej))
        check("none of them ran (the invoker ran nothing)", inv_runs() == before_runs,
              (before_runs, inv_runs()))
        for aid, _ in forged:
            check("no record of forged activation %s for bob" % aid[:8],
                  record("bob", aid) is None)
            check("no record of forged activation %s for alice" % aid[:8],
                  record("alice", aid) is None)
        log = open(c.procs["scheduler"].log, errors="replace").read()
        check("the scheduler logged SCHED-JOURNAL-REJECTED", "SCHED-JOURNAL-REJECTED" in log)
        # the legitimate use: bob's own non-blocking invoke is journaled and runs
        st, body, _ = invoke("bob", "vault", {"from": "bob"}, False)
        check("bob's non-blocking invoke is accepted", st == 202, (st, body))
        aid = body.get("activationId") if isinstance(body, dict) else None
        r = wait_until(lambda: record("bob", aid), 30, 0.2)
        check("bob's journaled activation ran with bob's params",
              r is not None and r.get("response", {}).get("result", {}).get("got") ==
              {"from": "bob"}, r)

    @case
    def forged_requests_to_the_invoker_are_refused():
        addr = json.loads(c.etcd_get("/gust/invokers/invoker0"))["address"]
        bob = action_rec("bob", "vault")
        alice = action_rec("alice", "mine")
        runs, rej = inv_runs(), inv_rejected()
        # no MAC
        f = request_fields(new_id(), "bob", "bob", "vault", bob, {"from": "alice"})
        res = nng_call(addr, encode_request(f, blocking=True))
        check("the invoker refuses a request without a MAC (EPERM)", res.get(9) == EPERM, res)
        # a wrong MAC
        f = request_fields(new_id(), "bob", "bob", "vault", bob, {"from": "alice"})
        res = nng_call(addr, encode_request(f, mac=areq_mac(b"guess", f), blocking=True))
        check("the invoker refuses a request with a wrong MAC (EPERM)", res.get(9) == EPERM,
              res)
        # a right MAC over other params than the request carries
        f = request_fields(new_id(), "bob", "bob", "vault", bob, {"from": "bob"})
        mac = areq_mac(secret(), f)
        f["params"] = json.dumps({"from": "alice"}).encode()
        res = nng_call(addr, encode_request(f, mac=mac, blocking=True))
        check("the invoker refuses a request whose params were swapped (EPERM)",
              res.get(9) == EPERM, res)
        # signed (as if by a gateway) but alice runs bob's code as herself
        f = request_fields(new_id(), "alice", "alice", "mine", bob, {"from": "alice"})
        res = nng_call(addr, encode_request(f, mac=areq_mac(secret(), f), blocking=True))
        check("the invoker refuses alice's request naming bob's code_key (EPERM)",
              res.get(9) == EPERM and b"does not belong" in res.get(10, b""), res)
        # the prefix trick: namespace "ali" and code under /gust/code/alice/
        f = request_fields(new_id(), "ali", "ali", "mine", alice, {})
        res = nng_call(addr, encode_request(f, mac=areq_mac(secret(), f), blocking=True))
        check("the invoker refuses namespace 'ali' loading /gust/code/alice/... (EPERM)",
              res.get(9) == EPERM, res)
        # bob calling alice's non-package action with alice's code
        f = request_fields(new_id(), "alice", "bob", "mine", alice, {})
        res = nng_call(addr, encode_request(f, mac=areq_mac(secret(), f), blocking=True))
        check("the invoker refuses bob running alice's unshared action (EPERM)",
              res.get(9) == EPERM, res)
        check("gust_invoker_requests_rejected_total rose by 6", inv_rejected() - rej == 6,
              (rej, inv_rejected()))
        check("the invoker ran none of them", inv_runs() == runs, (runs, inv_runs()))
        log = open(c.procs["invoker0"].log, errors="replace").read()
        check("the invoker logged INV-REQ-REJECTED", "INV-REQ-REJECTED" in log)
        # the legitimate use: a correctly signed request for alice's own code runs
        f = request_fields(new_id(), "alice", "alice", "mine", alice, {"from": "alice"})
        res = nng_call(addr, encode_request(f, mac=areq_mac(secret(), f), blocking=True))
        got = json.loads(res.get(3, b"{}") or b"{}")
        check("a correctly signed request of alice's own code runs",
              res.get(2, 0) == 0 and got.get("got") == {"from": "alice"}, res)

    @case
    def forged_requests_to_the_scheduler_are_refused():
        addr = json.loads(c.etcd_get("/gust/scheduler-members/scheduler"))["address"]
        bob = action_rec("bob", "vault")
        runs = inv_runs()
        rej = sched_metric("gust_scheduler_requests_rejected_total")
        f = request_fields(new_id(), "bob", "bob", "vault", bob, {"from": "alice"})
        first = f["activation_id"]
        res = nng_call(addr, encode_request(f, mac=areq_mac(b"guess", f)),  # non-blocking
                       as_role="gateway")
        check("the scheduler refuses a non-blocking request with a wrong MAC (EPERM)",
              res.get(9) == EPERM and not res.get(11), res)
        f = request_fields(new_id(), "bob", "bob", "vault", bob, {"from": "alice"})
        res = nng_call(addr, encode_request(f, blocking=True), as_role="gateway")
        check("the scheduler refuses a blocking request without a MAC (EPERM)",
              res.get(9) == EPERM, res)
        check("gust_scheduler_requests_rejected_total rose by 2",
              sched_metric("gust_scheduler_requests_rejected_total") - rej == 2)
        check("nothing was journaled for them",
              not journal_has(f["activation_id"]) and not journal_has(first))
        check("the invoker ran nothing", inv_runs() == runs, (runs, inv_runs()))
        check("bob's blocking invoke through the gateway still runs",
              invoke("bob", "vault", {"from": "bob"}, True)[0] == 200)

    @case
    def journaled_invokes_replayed_after_a_scheduler_kill_run():
        """Legitimate non-blocking invokes, accepted while no invoker is
        there, whose scheduler is then SIGKILLed: only the replay by the next
        scheduler can run them, and it must (their MACs verify)."""
        c.procs["invoker0"].stop()
        check("the scheduler sees no invoker",
              wait_until(lambda: c.sched_health("scheduler").get("invokers", 1) == 0, 20, 0.1))
        ids = []
        for i in range(5):
            st, body, _ = invoke("carol", "spy", {"i": i}, False)
            if st == 202:
                ids.append(body["activationId"])
        check("5 non-blocking invokes accepted (journaled)", len(ids) == 5, ids)
        check("they wait in the journal", c.redis("XLEN", "gust:journal") >= 5)
        c.procs["scheduler"].kill()
        c.start_scheduler("scheduler")
        c.start_invoker(0)
        c.wait_ready()
        done = wait_until(lambda: all(record("carol", a) for a in ids), 60, 0.3)
        check("every journaled activation ran after the replay", done,
              [a for a in ids if not record("carol", a)])
        check("the new scheduler replayed them",
              sched_metric("gust_scheduler_replayed_total") >= 5,
              sched_metric("gust_scheduler_replayed_total"))
        check("and rejected none", sched_metric("gust_scheduler_journal_rejected_total") == 0)
        results = [record("carol", a)["response"]["result"]["got"]["i"] for a in ids
                   if record("carol", a)]
        check("each ran with its own params", sorted(results) == list(range(5)), results)

    @case
    def shared_package_runs_for_its_callers():
        """The legitimate crossing of namespaces: alice's published package,
        called by carol through a binding, runs alice's code (the code check
        lets a package action of another owner pass)."""
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/packages/lib", {"publish": True},
                         AUTH["alice"])
        check("alice publishes package lib", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/lib/f",
                         {"exec": {"kind": "python:3", "code": SPY}}, AUTH["alice"])
        check("alice puts lib/f", st == 200, (st, b))
        rej = inv_rejected()
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/packages/mylib",
                         {"binding": {"namespace": "alice", "name": "lib"}}, AUTH["carol"])
        check("carol binds alice's lib", st == 200, (st, b))
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/mylib/f?blocking=true&result=true",
                         {"by": "carol"}, AUTH["carol"])
        check("carol runs lib/f through her binding",
              st == 200 and b.get("got") == {"by": "carol"}, (st, b))
        st, b, _ = c.api("POST", "/api/v1/namespaces/alice/actions/mine?blocking=true",
                         {"by": "carol"}, AUTH["carol"])
        check("carol cannot run alice's unshared action (the gateway refuses)",
              st in (403, 404), (st, b))
        check("no request was refused by the invoker meanwhile", inv_rejected() == rej,
              (rej, inv_rejected()))

    @case
    def rotation_keeps_accepting():
        """gust admin secret rotate: invokes before, during and after it run."""
        old = c.etcd_get("/gust/cluster/secret")
        rc = os.system("%s admin secret rotate --wait 1 --etcd %s >/dev/null" %
                       (c.bin("gust"), c.etcd_url))
        new = c.etcd_get("/gust/cluster/secret")
        check("rotate succeeded", rc == 0, rc)
        check("the new value holds a new current key and the old one as previous",
              new.split()[1] == old.split()[0] and new.split()[0] != old.split()[0],
              len(new))
        show = os.popen("%s admin secret show --etcd %s" % (c.bin("gust"), c.etcd_url)).read()
        fp = hashlib.sha256(bytes.fromhex(new.split()[0])).hexdigest()[:16]
        check("gust admin secret show prints fingerprints, not keys",
              ("current " + fp) in show and new.split()[0] not in show, show)
        st, body, _ = invoke("bob", "vault", {"after": "rotation"}, True)
        check("a blocking invoke after the rotation runs", st == 200, (st, body))
        st, body, _ = invoke("bob", "vault", {"after": "rotation"}, False)
        aid = body.get("activationId") if isinstance(body, dict) else None
        check("a non-blocking invoke after the rotation runs",
              wait_until(lambda: record("bob", aid), 30, 0.2) is not None, body)

finally:
    c.__exit__(None, None, None)
finish()
