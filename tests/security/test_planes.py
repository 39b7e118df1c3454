"""Issue 14, point 1: the nng planes between daemons are mutual TLS, by role.

The attacker is anyone on the network who can reach a daemon's nng port. To
show that the transport alone stops them, the attacker here even holds the
cluster secret (read from etcd, as an operator could): its ActivationRequests
carry a valid MAC, so only the transport can refuse them. It tries

  - an ActivationRequest to the invoker and to the scheduler, and an
    InvokerStatus to the scheduler's status socket: with no certificate, over
    plain TCP to the TLS port, with a valid certificate of the wrong role (a
    trigger's or gateway's at the invoker, an invoker's at the scheduler's
    request socket, a scheduler's at the status socket), and with a
    certificate naming the right role from another PKI. Every handshake must
    fail, and nothing may happen: no record, no run, no journal entry, no
    change in placement (the metrics and the scheduler's /health say so);
  - to pose as an invoker: a fake registration in etcd at a listener holding a
    valid gateway certificate; the scheduler's dialer must refuse it;
  - to turn TLS off: a scheduler registration with a tcp:// address; the
    gateway must not dial it.

Beside each, the legitimate use works: the same messages with a certificate
of the right role are run, journaled or applied, actions run through the
gateway, and a schedule trigger fires through gust-trigger. Last, a daemon
without TLS files and without insecure_transport refuses to start, naming the
keys; with insecure_transport it starts and says so at WARN."""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

from cluster import SOURCE, Cluster, free_port, wait_until
from gtest import case, check, finish
from sp import areq_mac, encode_request, encode_status, push, request, request_fields, tls_context

ECHO = "def main(a):\n    return {'got': a}\n"


def new_id():
    return os.urandom(16).hex()


c = Cluster("planes", invokers=1, trigger_daemons=1,
            # The status case stops invoker0 for a while: its registration
            # must outlive that, and silence must take it out quickly.
            invoker_args=["--lease_ttl_s", "60"],
            scheduler_args=["--status_timeout_ms", "1000"]).__enter__()
stopped = []
try:
    AUTH = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        AUTH[ns] = c.create_key(ns)
    for ns in ("alice", "bob", "carol"):
        ok = wait_until(lambda: c.api("PUT", "/api/v1/namespaces/_/actions/echo?overwrite=true",
                                      {"exec": {"kind": "python:3", "code": ECHO}},
                                      AUTH[ns])[0] == 200, 10, 0.1)
        check("%s creates her action" % ns, ok)

    def record(ns, aid):
        st, body, _ = c.api("GET", "/api/v1/namespaces/_/activations/" + aid, auth=AUTH[ns])
        return body if st == 200 else None

    def secret():
        return bytes.fromhex(c.etcd_get("/gust/cluster/secret").split()[0])

    def signed(ns, params, blocking):
        """A request for ns's echo with a valid MAC, as a gateway would send it."""
        rec = json.loads(c.etcd_get("/gust/actions/%s/echo" % ns))
        f = request_fields(new_id(), ns, ns, "echo", rec, params)
        return f["activation_id"], encode_request(f, mac=areq_mac(secret(), f),
                                                  blocking=blocking)

    def inv_metric(name):
        return c.metric(c.inv_metrics[0], name) or 0

    def sched_metric(name):
        return c.metric(c.sched_ports[c.leader() or "scheduler"], name) or 0

    def sched_invokers():
        return c.sched_health(c.leader() or "scheduler").get("invokers", -1)

    def journal_has(aid):
        for e in c.redis("XRANGE", "gust:journal", "-", "+") or []:
            f = e[1]
            if any(f[k] == b"a" and f[k + 1] == aid.encode() for k in range(0, len(f) - 1, 2)):
                return True
        return False

    # Certificates: the cluster's own (one per role, as a daemon of that role
    # would hold) and, from another PKI made here, ones that name the same roles.
    def ours(role):
        return tls_context(*c.pki_issue(role, "probe"))

    foreign_dir = os.path.join(c.dir, "foreign-pki")
    subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), foreign_dir, "init"],
                   check=True, stdout=subprocess.DEVNULL)

    def foreign(role):
        subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), foreign_dir, "issue", role,
                        "probe"], check=True, stdout=subprocess.DEVNULL)
        base = os.path.join(foreign_dir, "%s-probe" % role)
        return tls_context(base + ".crt", base + ".key")

    def refused(fn):
        """True when fn() fails (handshake or connection): the attack did not
        get a message through."""
        try:
            fn()
        except (ssl.SSLError, ConnectionError, OSError) as e:
            print("   refused: %s" % (str(e)[:120],), flush=True)
            return True
        return False

    def plain(url):
        return "tcp://" + url.split("://", 1)[1]

    inv_addr = json.loads(c.etcd_get("/gust/invokers/invoker0"))["address"]
    sched_addr = json.loads(c.etcd_get("/gust/scheduler-members/scheduler"))["address"]
    status_addr = json.loads(c.etcd_get("/gust/schedulers/leader"))["status_address"]

    @case
    def every_plane_is_tls():
        for what, a in (("invoker", inv_addr), ("scheduler", sched_addr),
                        ("scheduler status", status_addr)):
            check("the %s publishes a tls+tcp:// address in etcd" % what,
                  a.startswith("tls+tcp://127.0.0.1:"), a)
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/echo?blocking=true&result=true",
                         {"via": "gateway"}, AUTH["alice"])
        check("alice's invoke runs over the TLS planes", st == 200 and b.get("got") ==
              {"via": "gateway"}, (st, b))

    @case
    def activation_request_to_the_invoker():
        runs = inv_metric("gust_activations_total")
        rejected = inv_metric("gust_invoker_requests_rejected_total")
        tried = []
        for name, url, ctx in (
                ("no certificate", inv_addr, tls_context()),
                ("plain TCP to the TLS port", plain(inv_addr), None),
                ("a trigger's certificate", inv_addr, ours("trigger")),
                ("a gateway's certificate", inv_addr, ours("gateway")),
                ("an invoker's certificate", inv_addr, ours("invoker")),
                ("a scheduler certificate of another PKI", inv_addr, foreign("scheduler"))):
            aid, body = signed("bob", {"from": "attacker"}, True)
            tried.append(aid)
            check("the invoker refuses a signed request with %s" % name,
                  refused(lambda: request(url, body, ctx)))
        check("the invoker ran none of them",
              inv_metric("gust_activations_total") == runs, (runs,))
        check("none even reached the MAC check",
              inv_metric("gust_invoker_requests_rejected_total") == rejected)
        check("no record exists for any of them", all(record("bob", a) is None for a in tried))
        # the legitimate use: a scheduler's certificate
        aid, body = signed("bob", {"from": "scheduler"}, True)
        res = request(inv_addr, body, ours("scheduler"))
        got = json.loads(res.get(3, b"{}") or b"{}")
        check("the invoker runs the same request from a scheduler's certificate",
              res.get(2, 0) == 0 and got.get("got") == {"from": "scheduler"}, res)

    @case
    def activation_request_to_the_scheduler():
        journaled = sched_metric("gust_scheduler_journaled_total")
        tried = []
        for name, url, ctx in (
                ("no certificate", sched_addr, tls_context()),
                ("plain TCP to the TLS port", plain(sched_addr), None),
                ("an invoker's certificate", sched_addr, ours("invoker")),
                ("a scheduler's certificate", sched_addr, ours("scheduler")),
                ("a gateway certificate of another PKI", sched_addr, foreign("gateway"))):
            aid, body = signed("carol", {"from": "attacker"}, False)
            tried.append(aid)
            check("the scheduler refuses a signed request with %s" % name,
                  refused(lambda: request(url, body, ctx)))
        check("the scheduler journaled none of them",
              sched_metric("gust_scheduler_journaled_total") == journaled and
              not any(journal_has(a) for a in tried))
        # the legitimate use: a gateway's and a trigger daemon's certificates
        for role in ("gateway", "trigger"):
            aid, body = signed("carol", {"from": role}, False)
            res = request(sched_addr, body, ours(role))
            check("the scheduler accepts the same request from a %s's certificate" % role,
                  res.get(11) == 1, res)
            r = wait_until(lambda: record("carol", aid), 30, 0.2)
            check("and it runs (%s)" % role,
                  r is not None and r.get("response", {}).get("result", {}).get("got") ==
                  {"from": role}, r)
        check("no record exists for the refused ones",
              all(record("carol", a) is None for a in tried))

    @case
    def invoker_status_to_the_scheduler():
        # Silence takes invoker0 out of placement; a status brings it back.
        # Only an invoker's certificate may send that status.
        p = c.procs["invoker0"].p
        os.kill(p.pid, signal.SIGSTOP)
        stopped.append(p.pid)
        check("a silent invoker leaves placement", wait_until(lambda: sched_invokers() == 0,
                                                              15, 0.05), sched_invokers())
        status = encode_status("invoker0", inv_addr, c.memory_mb, c.memory_mb)
        for name, url, ctx in (
                ("no certificate", status_addr, tls_context()),
                ("plain TCP to the TLS port", plain(status_addr), None),
                ("a scheduler's certificate", status_addr, ours("scheduler")),
                ("a gateway's certificate", status_addr, ours("gateway")),
                ("an invoker certificate of another PKI", status_addr, foreign("invoker"))):
            check("the status socket refuses an InvokerStatus with %s" % name,
                  refused(lambda: push(url, status, ctx)))
        check("none of them put the invoker back", sched_invokers() == 0, sched_invokers())
        push(status_addr, status, ours("invoker"))
        check("an invoker's certificate puts it back (the status was taken)",
              wait_until(lambda: sched_invokers() == 1, 10, 0.02), sched_invokers())
        os.kill(p.pid, signal.SIGCONT)
        stopped.remove(p.pid)
        check("invoker0 is in placement again on its own",
              wait_until(lambda: sched_invokers() == 1, 15, 0.1))

    @case
    def a_fake_invoker_is_not_dialed():
        # A listener at a registered invoker address that holds a valid
        # certificate of another role: the scheduler's dialer must refuse it.
        def fake(role, name):
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(8)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*c.pki_issue(role, name))
            seen = {"ok": 0, "failed": 0}

            def serve():
                while True:
                    try:
                        conn, _ = srv.accept()
                    except OSError:
                        return
                    try:
                        ctx.wrap_socket(conn, server_side=True).close()
                        seen["ok"] += 1
                    except (ssl.SSLError, OSError):
                        seen["failed"] += 1
                        conn.close()
            threading.Thread(target=serve, daemon=True).start()
            key = "/gust/invokers/fake-" + role
            c.etcd_put(key, json.dumps({"id": "fake-" + role, "memory_mb": 128,
                                        "address": "tls+tcp://127.0.0.1:%d" %
                                        srv.getsockname()[1]}))
            return srv, key, seen

        srv, key, seen = fake("gateway", "fake")
        check("the scheduler dials the fake invoker (gateway certificate)",
              wait_until(lambda: seen["ok"] + seen["failed"] >= 1, 15, 0.05), seen)
        check("and refuses its certificate in the handshake", seen["ok"] == 0, seen)
        c.etcd("/v3/kv/deleterange", {"key": c._b64(key)})
        srv.close()
        # the control: the same listener with an invoker's certificate passes
        srv, key, seen = fake("invoker", "fake")
        check("a listener with an invoker's certificate passes the scheduler's handshake",
              wait_until(lambda: seen["ok"] >= 1, 15, 0.05), seen)
        c.etcd("/v3/kv/deleterange", {"key": c._b64(key)})
        srv.close()
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/echo?blocking=true&result=true",
                         {"after": "fake"}, AUTH["bob"])
        check("bob's invoke still runs", st == 200 and b.get("got") == {"after": "fake"},
              (st, b))

    @case
    def a_tcp_address_in_etcd_does_not_turn_tls_off():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.1)
        url = "tcp://127.0.0.1:%d" % srv.getsockname()[1]
        # the gateway dials every scheduler address under /gust/schedulers/
        c.etcd_put("/gust/schedulers/plain", json.dumps({"id": "plain", "address": url}))
        log = c.procs["gateway"].log

        def said():
            return url in open(log, errors="replace").read()
        check("the gateway sees the tcp:// scheduler and says why it does not dial it",
              wait_until(lambda: said() and "insecure_transport" in
                         open(log, errors="replace").read(), 15, 0.1))
        try:
            conn, _ = srv.accept()
            conn.close()
            dialed = True
        except socket.timeout:
            dialed = False
        check("nothing connected to the tcp:// address", not dialed)
        c.etcd("/v3/kv/deleterange", {"key": c._b64("/gust/schedulers/plain")})
        srv.close()

    @case
    def legitimate_triggers_run():
        # gateway -> scheduler: a trigger fired through the API, with a rule
        for path, body in (("triggers/poke", {}),
                           ("rules/pokerule", {"trigger": "/_/poke", "action": "/_/echo"})):
            st, b, _ = c.api("PUT", "/api/v1/namespaces/_/" + path, body, AUTH["alice"])
            check("alice creates %s" % path, st == 200, (st, b))
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/triggers/poke", {"fired": 1},
                         AUTH["alice"])
        check("alice fires her trigger", st in (200, 202), (st, b))

        def echoed(ns, key):
            st, acts, _ = c.api("GET", "/api/v1/namespaces/_/activations?name=echo&limit=50",
                                auth=AUTH[ns])
            for a in acts if st == 200 and isinstance(acts, list) else []:
                r = record(ns, a["activationId"])
                if r and key in (r.get("response", {}).get("result", {}).get("got") or {}):
                    return True
            return False
        check("the rule ran alice's action", wait_until(lambda: echoed("alice", "fired"), 30,
                                                         0.3))
        # gust-trigger -> scheduler: a schedule feed every 2 s
        for path, body in (("triggers/tick", {
                "annotations": [{"key": "feed", "value": "schedule"}],
                "parameters": [{"key": "intervalSeconds", "value": 2},
                               {"key": "payload", "value": {"tick": 1}}]}),
                ("rules/tickrule", {"trigger": "/_/tick", "action": "/_/echo"})):
            st, b, _ = c.api("PUT", "/api/v1/namespaces/_/" + path, body, AUTH["bob"])
            check("bob creates %s" % path, st == 200, (st, b))
        check("gust-trigger's fire ran bob's action",
              wait_until(lambda: echoed("bob", "tick"), 30, 0.5))

    @case
    def insecure_transport_is_explicit():
        gw = c.bin("gust-gateway")
        # the gateway's own stores credentials: only the nng plane is missing
        env = {k: v for k, v in c.common_env("gateway").items()
               if not k.startswith("GUST_TRANSPORT")}
        port = free_port()
        p = subprocess.run([gw, "--port", str(port)], env=env, capture_output=True, text=True,
                           timeout=30)
        out = p.stdout + p.stderr
        check("a gateway without TLS files and without insecure_transport does not start",
              p.returncode != 0, p.returncode)
        check("and names the keys", all(k in out for k in ("transport_cert", "transport_key", "transport_ca_dir",
                                                             "insecure_transport")), out)
        log = os.path.join(c.dir, "insecure-gateway.log")
        with open(log, "wb") as f:
            q = subprocess.Popen([gw, "--port", str(port), "--insecure_transport"], env=env,
                                 stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def healthy():
                try:
                    return c.http("GET", "http://127.0.0.1:%d/health" % port, timeout=2)[0] == 200
                except OSError:
                    return False
            up = wait_until(healthy, 20, 0.1)
            check("with insecure_transport it starts", up and q.poll() is None)
            text = open(log, errors="replace").read()
            lines = [ln for ln in text.splitlines() if "NNG-INSECURE" in ln]
            check("and logs NNG-INSECURE at WARN", lines and all("WARN" in ln for ln in lines),
                  text[-2000:])
            check("and, holding no certificate, does not dial the TLS scheduler",
                  wait_until(lambda: "GW-SCHED-DIAL" in open(log, errors="replace").read(),
                             15, 0.1))
        finally:
            q.terminate()
            q.wait(10)
finally:
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)
    c.__exit__(*sys.exc_info())
finish()
