"""The walking skeleton end to end: real etcd, Redis, scheduler, invoker and
gateway, driven over HTTP as a client would."""
import base64
import concurrent.futures
import json
import os
import socket
import sys
import time
import urllib.request

from cluster import Cluster, wait_until
from gtest import case, check, finish

PY_V1 = "def main(args):\n    print('python v1 log', args.get('name'))\n    return {'v': 1, 'greeting': 'hello ' + args.get('name', 'world')}\n"
PY_V2 = "def main(args):\n    return {'v': 2, 'greeting': 'bonjour ' + args.get('name', 'world')}\n"
JS_V1 = "function main(args) {\n  console.log('node v1 log', args.name);\n  return {v: 1, greeting: 'hello ' + (args.name || 'world')};\n}\n"
JS_V2 = "function main(args) {\n  return Promise.resolve({v: 2, greeting: 'hallo ' + (args.name || 'world')});\n}\n"
ECHO = "def main(args):\n    return {'n': args['n'], 'echo': args}\n"
PROBE = """import os, socket
def main(args):
    out = {'pid': os.getpid(), 'uid': os.getuid(), 'hostname': socket.gethostname(),
           'ifaces': [n for _, n in socket.if_nameindex()],
           'shadow': os.path.exists('/etc/shadow'),
           'procs': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}
    try:
        open('/usr/gust-probe', 'w')
        out['usr_writable'] = True
    except OSError:
        out['usr_writable'] = False
    for ns in ('pid', 'mnt', 'net', 'uts', 'ipc'):
        out[ns] = os.readlink('/proc/self/ns/' + ns)
    return out
"""

c = Cluster("skeleton").__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    c.create_namespace("other")
    OTHER = c.create_key("other")
    time.sleep(0.3)  # the gateway learns keys through its etcd watch

    def put(name, kind, code, auth=AUTH, overwrite=False, **extra):
        body = {"exec": {"kind": kind, "code": code}}
        body.update(extra)
        return c.api("PUT", "/api/v1/namespaces/_/actions/%s%s" % (name, "?overwrite=true" if overwrite else ""),
                     body, auth)

    def invoke(name, params=None, auth=AUTH, result=True, blocking=True, ns="_"):
        q = "blocking=%s&result=%s" % (str(blocking).lower(), str(result).lower())
        return c.api("POST", "/api/v1/namespaces/%s/actions/%s?%s" % (ns, name, q), params or {}, auth)

    @case
    def lifecycle():
        for kind, v1, v2, hello2 in (("python:3", PY_V1, PY_V2, "bonjour"), ("nodejs:20", JS_V1, JS_V2, "hallo")):
            name = "life-" + kind.split(":")[0]
            st, body, _ = put(name, kind, v1)
            check("%s create 200" % kind, st == 200, (st, body))
            check("%s create version 0.0.1" % kind, body and body.get("version") == "0.0.1", body)
            st, body, h = invoke(name, {"name": "gust"})
            check("%s invoke v1" % kind, st == 200 and body == {"v": 1, "greeting": "hello gust"}, (st, body))
            check("%s activation id header" % kind, len(h.get("x-openwhisk-activation-id", "")) == 32, h)
            st, rec, _ = invoke(name, {"name": "logs"}, result=False)
            logs = rec.get("logs", []) if isinstance(rec, dict) else []
            check("%s record has the log line" % kind,
                  st == 200 and any(("v1 log" in l and "logs" in l and "stdout:" in l) for l in logs), rec)
            check("%s record shape" % kind,
                  st == 200 and rec["response"]["status"] == "success" and rec["response"]["statusCode"] == 0
                  and rec["response"]["success"] is True and rec["name"] == name and rec["namespace"] == "guest",
                  rec)
            st, body, _ = put(name, kind, v1)
            check("%s create again without overwrite is 409" % kind, st == 409, (st, body))
            st, body, _ = put(name, kind, v2, overwrite=True)
            check("%s update 200 version 0.0.2" % kind, st == 200 and body.get("version") == "0.0.2", (st, body))
            st, body, _ = invoke(name, {"name": "gust"})
            check("%s invoke runs the new code" % kind,
                  st == 200 and body == {"v": 2, "greeting": hello2 + " gust"}, (st, body))
            st, body, _ = c.api("GET", "/api/v1/namespaces/_/actions/" + name, auth=AUTH)
            check("%s get returns code and version" % kind,
                  st == 200 and body["exec"]["code"] == v2 and body["version"] == "0.0.2", (st, body))
            st, body, _ = c.api("DELETE", "/api/v1/namespaces/_/actions/" + name, auth=AUTH)
            check("%s delete 200" % kind, st == 200, (st, body))
            st, body, _ = invoke(name)
            check("%s invoke after delete is 404" % kind, st == 404 and "error" in body, (st, body))

    @case
    def concurrent_invocations():
        st, body, _ = put("echo", "python:3", ECHO)
        check("echo created", st == 200, (st, body))

        def one(i):
            return i, invoke("echo", {"n": i, "pad": "x" * (i % 7)})

        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            for i, (st, body, _) in ex.map(one, range(200)):
                results.append((i, st, body))
        ok = [r for r in results if r[1] == 200 and isinstance(r[2], dict) and r[2].get("n") == r[0]
              and r[2]["echo"].get("pad") == "x" * (r[0] % 7)]
        check("200 invocations with 20 in flight each get their own result", len(ok) == 200,
              [r for r in results if r not in ok][:3])

    @case
    def default_params_merge():
        st, body, _ = put("params", "python:3", "def main(a):\n    return a\n",
                          parameters=[{"key": "a", "value": 1}, {"key": "b", "value": "default"}])
        check("params action created", st == 200, (st, body))
        st, body, _ = invoke("params", {"b": "mine", "c": [1, 2]})
        check("invoke params override defaults", st == 200 and body == {"a": 1, "b": "mine", "c": [1, 2]}, (st, body))
        st, body, _ = invoke("params")
        check("defaults alone", st == 200 and body == {"a": 1, "b": "default"}, (st, body))

    @case
    def bad_input():
        put("echo2", "python:3", ECHO)
        url = c.api_host + "/api/v1/namespaces/_/actions/echo2?blocking=true&result=true"
        for bad in (b"{not json", b"[1,2]", b"\"str\"", b"{\"a\":", b"\xff\xfe"):
            st, body, _ = c.http("POST", url, bad, AUTH)
            check("malformed body %r is 400 with a JSON error" % bad[:8],
                  st == 400 and isinstance(body, dict) and "error" in body and "code" in body, (st, body))
        st, body, _ = invoke("echo2", {"n": 1}, auth=AUTH.split(":")[0] + ":" + "x" * 64)
        check("wrong key is 401", st == 401 and "error" in body, (st, body))
        st, body, _ = invoke("echo2", {"n": 1}, auth="00000000-0000-4000-8000-000000000000:nope")
        check("unknown uuid is 401", st == 401, (st, body))
        st, body, _ = c.api("POST", "/api/v1/namespaces/_/actions/echo2?blocking=true", {"n": 1})
        check("no credentials is 401", st == 401, (st, body))
        st, body, _ = invoke("no-such-action")
        check("unknown action is 404", st == 404 and "error" in body, (st, body))
        st, body, _ = invoke("echo2", {"n": 1}, auth=OTHER, ns="guest")
        check("another namespace's action is 403", st == 403, (st, body))
        st, body, _ = put("bad-kind", "cobol:1", "x")
        check("unknown kind is 400", st == 400, (st, body))
        st, body, _ = put("bad-limits", "python:3", ECHO, limits={"memory": 4096})
        check("memory out of bounds is 400", st == 400, (st, body))
        st, body, _ = c.http("POST", url, b"{\"n\": \"" + b"x" * (1024 * 1024 + 10) + b"\"}", AUTH)
        check("payload over 1 MB is 413", st == 413, (st, body))
        # raw garbage on the socket, then the gateway still serves
        s = socket.create_connection(("127.0.0.1", c.gw_port))
        s.sendall(b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n" * 10)
        s.close()
        st, body, _ = invoke("echo2", {"n": 7})
        check("gateway keeps serving after bad input", st == 200 and body["n"] == 7, (st, body))
        check("gateway process alive", c.procs["gateway"].alive())

    @case
    def app_error_and_nonblocking():
        put("boom", "python:3", "def main(a):\n    raise ValueError('kaboom')\n")
        st, body, _ = invoke("boom")
        check("application error is 502 with the error", st == 502 and "kaboom" in json.dumps(body), (st, body))
        st, body, _ = invoke("echo", {"n": 99}, blocking=False, result=False)
        check("non-blocking is 202 with an activation id", st == 202 and len(body.get("activationId", "")) == 32, (st, body))
        aid = body.get("activationId")
        rec = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
            c.api("GET", "/api/v1/namespaces/_/activations/%s" % aid, auth=AUTH)), timeout=10)
        check("its record appears in Redis", rec and rec[1]["response"]["result"]["n"] == 99, rec)

    @case
    def sandbox_isolation():
        put("probe", "python:3", PROBE)
        st, body, _ = invoke("probe")
        check("probe ran", st == 200, (st, body))
        if st != 200:
            return
        host_ns = {ns: os.readlink("/proc/self/ns/" + ns) for ns in ("pid", "mnt", "net", "uts", "ipc")}
        for ns in host_ns:
            check("function runs in its own %s namespace" % ns, body[ns] != host_ns[ns], (body[ns], host_ns[ns]))
        check("hostname is the sandbox's", body["hostname"] != socket.gethostname(), body["hostname"])
        check("only loopback", body["ifaces"] == ["lo"], body["ifaces"])
        check("no /etc/shadow", body["shadow"] is False)
        check("root is read-only", body["usr_writable"] is False)
        check("sees only its own processes", len(body["procs"]) <= 4 and max(body["procs"]) < 100, body["procs"])
        check("not root", body["uid"] != 0, body["uid"])

    @case
    def health_and_metrics():
        for name, port in (("gateway", c.gw_port), ("scheduler", c.sched_metrics), ("invoker", c.inv_metrics[0])):
            st, body, _ = c.http("GET", "http://127.0.0.1:%d/health" % port)
            check("%s /health 200" % name, st == 200, (st, body))
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                text = r.read().decode()
            check("%s /metrics is Prometheus text" % name, "# TYPE " in text, text[:200])
            if name != "scheduler":
                check("%s counts activations by status" % name, 'gust_activations_total{status="success"}' in text)
            check("%s has a latency histogram" % name, "_seconds_bucket{" in text)

    @case
    def invoker_lease_lapses():
        # SIGKILL: no clean deregistration; only the lease expiry (3 s) removes it.
        c.procs["invoker0"].kill()
        t0 = time.time()
        gone = wait_until(lambda: c.http("GET", "http://127.0.0.1:%d/health" % c.sched_metrics)[1].get("invokers") == 0,
                          timeout=10)
        check("killed invoker leaves the scheduler's view when its lease lapses", gone, time.time() - t0)
        st, body, _ = invoke("echo", {"n": 1})
        check("with no invoker a blocking invoke fails clearly (503)", st == 503 and "error" in body, (st, body))
        c.start_invoker(0)
        back = wait_until(lambda: c.http("GET", "http://127.0.0.1:%d/health" % c.sched_metrics)[1].get("invokers") == 1,
                          timeout=10)
        check("a restarted invoker registers again", back)
        st, body, _ = invoke("echo", {"n": 5})
        check("and serves", st == 200 and body.get("n") == 5, (st, body))
finally:
    c.__exit__(None, None, None)
finish()
