"""Issue 14, point 2: etcd and Redis with credentials.

The harness runs etcd over https with --client-cert-auth and auth (users and
roles by deploy/gust-stores) and Redis with its default user off and one ACL
user per role. An attacker on the network without credentials, and one who
stole a daemon's credentials, try to read and write the stores; every attempt
must fail, while the daemons, each with its own role, still run the cluster
(invokes, trigger fires, the state cache)."""
import base64
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from cluster import Cluster, _resp_read, wait_until
from gtest import case, check, finish

STATE = """
import gust_state
def main(a):
    gust_state.set("k", a.get("v", "x"))
    return {"got": gust_state.get("k")}
"""


def b64(s):
    return base64.b64encode(s.encode()).decode()


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


c = Cluster("stores").__enter__()
try:
    AUTH = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        AUTH[ns] = c.create_key(ns)
    assert c.etcd_url.startswith("https://"), c.etcd_url
    CA = os.path.join(c.pki, "ca.crt")
    HOSTPORT = c.etcd_url[len("https://"):]

    def etcd_as(path, body, ctx, token=None, url=None):
        """(HTTP status or the exception's text, body) of one etcd call."""
        req = urllib.request.Request((url or c.etcd_url) + path, data=json.dumps(body).encode(),
                                     method="POST")
        if token:
            req.add_header("Authorization", token)
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (OSError, ssl.SSLError) as e:
            return "error", repr(e)

    def role_token(role):
        user = "gust-" + role
        return c.etcd_token(user, c.store_password("etcd", user), c.etcd_ssl(role))

    def redis_as(user, *args):
        """The reply of one command as user (None: no AUTH at all), or the
        error text."""
        s = socket.create_connection(("127.0.0.1", c.redis_port), 5)
        try:
            f = s.makefile("rb")
            if user is not None:
                s.sendall(resp("AUTH", user, c.store_password("redis", user)))
                _resp_read(f)
            s.sendall(resp(*args))
            return _resp_read(f)
        except RuntimeError as e:
            return str(e)
        finally:
            s.close()

    c.etcd_put("/gust/keys/planted", json.dumps({"uuid": "planted", "namespace": "alice"}))
    SECRET = c.etcd_get("/gust/cluster/secret")
    check("the operator's tool made the cluster secret", SECRET is not None and len(SECRET) >= 64)

    # --- etcd ---------------------------------------------------------------
    @case
    def etcd_no_client_certificate():
        ctx = ssl.create_default_context(cafile=CA)  # trusts etcd, shows no certificate
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/keys/"),
                                            "range_end": b64("/gust/keys0")}, ctx)
        check("https without a client certificate: no TLS session", st == "error", (st, body))
        st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/keys/evil"), "value": b64("x")}, ctx)
        check("https without a client certificate: no write", st == "error", (st, body))
        check("... and nothing was written", c.etcd_get("/gust/keys/evil") is None)

    @case
    def etcd_plain_http():
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/cluster/secret")}, None,
                           url="http://" + HOSTPORT)
        check("plain http to etcd: refused", st != 200 and SECRET not in body, (st, body[:200]))

    @case
    def etcd_certificate_without_user():
        # A stolen certificate alone (no user, no token) reads nothing.
        ctx = c.etcd_ssl("invoker")
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/cluster/secret")}, ctx)
        check("a client certificate without a user reads nothing",
              st != 200 and SECRET not in body, (st, body[:200]))
        st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/keys/evil"), "value": b64("x")}, ctx)
        check("a client certificate without a user writes nothing", st != 200, (st, body[:200]))
        st, body = etcd_as("/v3/auth/authenticate", {"name": "gust-invoker", "password": "guess"},
                           ctx)
        check("a wrong password gets no token", st != 200 and "token" not in body, (st, body))

    @case
    def etcd_invoker_identity():
        ctx, tok = c.etcd_ssl("invoker"), role_token("invoker")
        st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/keys/evil"),
                                          "value": b64('{"namespace": "alice"}')}, ctx, tok)
        check("the invoker's identity cannot write /gust/keys/",
              st != 200 and "permission denied" in body, (st, body))
        check("... and nothing was written", c.etcd_get("/gust/keys/evil") is None)
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/keys/"),
                                            "range_end": b64("/gust/keys0")}, ctx, tok)
        check("the invoker's identity cannot read /gust/keys/",
              st != 200 and "permission denied" in body, (st, body))
        st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/namespaces/evil"), "value": b64("{}")},
                           ctx, tok)
        check("the invoker's identity cannot create a namespace", st != 200, (st, body))
        st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/cluster/secret"), "value": b64("0" * 64)},
                           ctx, tok)
        check("the invoker's identity cannot replace the cluster secret", st != 200, (st, body))
        check("... which is unchanged", c.etcd_get("/gust/cluster/secret") == SECRET)
        st, body = etcd_as("/v3/auth/user/add", {"name": "evil", "password": "x"}, ctx, tok)
        check("the invoker's identity cannot add etcd users", st != 200, (st, body))
        # What it needs: its registration, and (documented) the secret that
        # verifies activation requests.
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/invokers/"),
                                            "range_end": b64("/gust/invokers0")}, ctx, tok)
        check("the invoker's identity reads the invokers (legitimate)",
              st == 200 and "kvs" in body, (st, body[:200]))

    @case
    def etcd_other_roles():
        for role in ("gateway", "scheduler", "trigger"):
            ctx, tok = c.etcd_ssl(role), role_token(role)
            st, body = etcd_as("/v3/kv/put", {"key": b64("/gust/keys/evil"), "value": b64("{}")},
                               ctx, tok)
            check("%s's identity cannot write /gust/keys/" % role, st != 200, (st, body))
        ctx, tok = c.etcd_ssl("trigger"), role_token("trigger")
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/keys/"),
                                            "range_end": b64("/gust/keys0")}, ctx, tok)
        check("the trigger's identity cannot read /gust/keys/", st != 200, (st, body))
        ctx, tok = c.etcd_ssl("scheduler"), role_token("scheduler")
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/state/"),
                                            "range_end": b64("/gust/state0")}, ctx, tok)
        check("the scheduler's identity cannot read the namespaces' Redis passwords",
              st != 200, (st, body))
        ctx, tok = c.etcd_ssl("gateway"), role_token("gateway")
        st, body = etcd_as("/v3/kv/range", {"key": b64("/gust/keys/"),
                                            "range_end": b64("/gust/keys0")}, ctx, tok)
        check("the gateway's identity reads /gust/keys/ (legitimate: it checks API keys)",
              st == 200 and b64("/gust/keys/planted") in body, (st, body[:200]))
    c.etcd("/v3/kv/deleterange", {"key": b64("/gust/keys/planted")})

    # --- Redis --------------------------------------------------------------
    @case
    def redis_without_credentials():
        r = redis_as(None, "GET", "gust:journal")
        check("Redis without AUTH: refused", "NOAUTH" in str(r), r)
        r = redis_as(None, "XRANGE", "gust:journal", "-", "+")
        check("Redis without AUTH: the journal is not read", "NOAUTH" in str(r), r)
        s = socket.create_connection(("127.0.0.1", c.redis_port), 5)
        f = s.makefile("rb")
        for pw in ("", "nopass", "x"):
            s.sendall(resp("AUTH", "default", pw))
            try:
                got = _resp_read(f)
            except RuntimeError as e:
                got = str(e)
            check("the default user is off (password %r)" % pw, got != "OK", got)
        s.sendall(resp("AUTH", "gust-invoker", "guess"))
        try:
            got = _resp_read(f)
        except RuntimeError as e:
            got = str(e)
        check("a role user with a wrong password: refused", got != "OK", got)
        s.close()

    @case
    def redis_gateway_user():
        r = redis_as("gust-gateway", "XRANGE", "gust:journal", "-", "+")
        check("the gateway cannot read the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-gateway", "XADD", "gust:journal", "*", "x", "y")
        check("the gateway cannot write the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-gateway", "DEL", "gust:journal")
        check("the gateway cannot delete the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-gateway", "GET", "gust:state:alice:k")
        check("the gateway cannot read state", "NOPERM" in str(r), r)
        r = redis_as("gust-gateway", "FLUSHALL")
        check("the gateway cannot flush Redis", "NOPERM" in str(r), r)
        r = redis_as("gust-gateway", "GET", "gust:act:nothing")
        check("the gateway reads records (legitimate)", r is None, r)

    @case
    def redis_trigger_user():
        c.redis("SET", "gust:state:alice:secret", "hers")
        r = redis_as("gust-trigger", "GET", "gust:state:alice:secret")
        check("the trigger daemon's user cannot read state", "NOPERM" in str(r), r)
        r = redis_as("gust-trigger", "XRANGE", "gust:journal", "-", "+")
        check("the trigger daemon's user cannot read the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-trigger", "KEYS", "*")
        check("the trigger daemon's user cannot list keys", "NOPERM" in str(r), r)

    @case
    def redis_invoker_user():
        r = redis_as("gust-invoker", "XRANGE", "gust:journal", "-", "+")
        check("the invoker's user cannot read the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-invoker", "XREAD", "STREAMS", "gust:journal", "0")
        check("the invoker's user cannot XREAD the journal", "NOPERM" in str(r), r)
        r = redis_as("gust-invoker", "GET", "gust:state:alice:secret")
        check("the invoker's own user cannot read state", "NOPERM" in str(r), r)
        r = redis_as("gust-invoker", "SET", "gust:state:alice:secret", "overwritten")
        check("the invoker's own user cannot write state", "NOPERM" in str(r), r)
        r = redis_as("gust-invoker", "XDEL", "gust:journal", "0-1")
        check("the invoker's user deletes finished journal entries (legitimate)", r == 0, r)
        r = redis_as("gust-invoker", "MEMORY", "USAGE", "gust:state:alice:secret")
        check("the invoker's user sizes state keys for quotas (legitimate)",
              isinstance(r, int) and r > 0, r)

    @case
    def redis_scheduler_user():
        r = redis_as("gust-scheduler", "GET", "gust:state:alice:secret")
        check("the scheduler's user cannot read state", "NOPERM" in str(r), r)
        r = redis_as("gust-scheduler", "ACL", "SETUSER", "evil", "on", ">x", "~*", "+@all")
        check("the scheduler's user cannot make users", "NOPERM" in str(r), r)
        r = redis_as("gust-scheduler", "XLEN", "gust:journal")
        check("the scheduler's user reads the journal (legitimate)", isinstance(r, int), r)
    c.redis("DEL", "gust:state:alice:secret")

    # --- the cluster works with these identities -----------------------------
    @case
    def cluster_works():
        for ns in ("alice", "bob", "carol"):
            st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/state?overwrite=true",
                             {"exec": {"kind": "python:3", "code": STATE}}, AUTH[ns])
            check("%s creates an action" % ns, st == 200, (st, b))
        for ns in ("alice", "bob", "carol"):
            st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/state?blocking=true&result=true",
                             {"v": ns}, AUTH[ns])
            check("%s invokes, the state cache answers as %s's user" % (ns, ns),
                  st == 200 and b.get("got") == ns, (st, b))
        got = c.redis("GET", "gust:state:alice:k")
        check("the value is in alice's keyspace", got == b"alice", got)
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/triggers/t", {}, AUTH["alice"])
        check("a trigger is created", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/rules/r",
                         {"trigger": "/_/t", "action": "/_/state"}, AUTH["alice"])
        check("a rule is created", st == 200, (st, b))
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/triggers/t", {"v": "fired"}, AUTH["alice"])
        check("the trigger fires", st in (200, 202) and "activationId" in b, (st, b))
        fired = wait_until(lambda: c.redis("GET", "gust:state:alice:k") == b"fired", 30)
        check("the rule's action ran (fire -> scheduler -> invoker -> state)", fired)

    @case
    def tokens_renewed_after_an_auth_change():
        # Any change to etcd's users or roles makes every token old
        # ("revision of auth store is old"): the daemons must authenticate
        # again, not fail.
        c.etcd("/v3/auth/user/add", {"name": "someone", "password": "p" * 20})
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/after?overwrite=true",
                         {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}},
                         AUTH["bob"])
        check("the gateway writes etcd after an auth change", st == 200, (st, b))
        ok = wait_until(lambda: c.api("POST", "/api/v1/namespaces/_/actions/after?blocking=true"
                                      "&result=true", {"x": 1}, AUTH["bob"])[1] == {"x": 1}, 30)
        check("and the new action runs", ok)
        c.etcd("/v3/auth/user/delete", {"name": "someone"})

    @case
    def tokens_renewed_after_an_etcd_restart():
        # etcd's simple tokens live in its memory: after a restart every
        # daemon's token is invalid, for calls and for watches that reconnect.
        def loads():
            with open(os.path.join(c.dir, "invoker0.log"), errors="replace") as f:
                return f.read().count("SECRET-LOADED")
        before = loads()
        c.procs["etcd"].stop()
        c.start_etcd()
        # Nothing else makes the invoker call etcd here (no invoke): a new
        # cluster secret reaches it only if its watch renews its own token.
        r = subprocess.run([c.bin("gust"), "admin", "secret", "rotate", "--wait", "1"],
                           env=c.common_env(), capture_output=True, text=True, timeout=60)
        check("the operator rotates the cluster secret", r.returncode == 0, r.stderr)
        check("the invoker's watch renewed its token and saw the new secret",
              wait_until(lambda: loads() > before, 30), (before, loads()))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/restarted?overwrite=true",
                         {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}},
                         AUTH["carol"])
        check("the gateway writes etcd after etcd restarted", st == 200, (st, b))
        # The gateway serves invokes from its cache, fed by its watch: the
        # action is invokable only once the watch is back (with a new token).
        ok = wait_until(lambda: c.api("POST", "/api/v1/namespaces/_/actions/restarted?"
                                      "blocking=true&result=true", {"y": 2},
                                      AUTH["carol"])[1] == {"y": 2}, 30)
        check("its watches came back and the action (signed with the new key) runs", ok)

    @case
    def nothing_secret_in_logs():
        secrets_ = [c.store_password(store, u) for store, u in
                    [("etcd", "root")] + [("etcd", "gust-" + r) for r in
                                          ("gateway", "scheduler", "invoker", "trigger")] +
                    [("redis", "gust-admin")] + [("redis", "gust-" + r) for r in
                                                 ("gateway", "scheduler", "invoker", "trigger")]]
        logs = ""
        for name in os.listdir(c.dir):
            if name.endswith(".log"):
                with open(os.path.join(c.dir, name), errors="replace") as f:
                    logs += f.read()
        check("the daemons' logs hold no password", not any(s in logs for s in secrets_))
        check("every daemon logged the identity it uses",
              logs.count("STORES-CREDS") >= 3, logs.count("STORES-CREDS"))
        for name, p in c.procs.items():
            if p.p is None:
                continue
            with open("/proc/%d/cmdline" % p.p.pid, "rb") as f:
                argv = f.read()
            check("%s's command line holds no password" % name,
                  not any(s.encode() in argv for s in secrets_))

    @case
    def daemon_refuses_plain_stores():
        # with its nng certificate, so that what stops it is the stores
        tls = c.transport_args("gateway", "gateway-plain")
        env = c.common_env("gateway")
        env["GUST_ETCD"] = "http://" + HOSTPORT
        r = subprocess.run([c.bin("gust-gateway"), "--port", "1"] + tls, env=env,
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        check("a daemon refuses http:// etcd without insecure_stores",
              r.returncode != 0 and "insecure_stores" in out, (r.returncode, out[-300:]))
        env = c.common_env("gateway")
        env.pop("GUST_REDIS_USER")
        env.pop("GUST_REDIS_PASSWORD_FILE")
        r = subprocess.run([c.bin("gust-gateway"), "--port", "1"] + tls, env=env,
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        check("a daemon refuses to start without its Redis user",
              r.returncode != 0 and "redis_user" in out, (r.returncode, out[-300:]))
        r = subprocess.run([c.bin("gust-gateway"), "--port", "1", "--redis_user", "gust-gateway",
                            "--redis_password_file", "/nonexistent/pw"] + tls, env=env,
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        check("a missing password file is named",
              r.returncode != 0 and "redis_password_file" in out, (r.returncode, out[-300:]))
finally:
    c.__exit__(None, None, None)
finish()
