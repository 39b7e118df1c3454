"""The edges of a cluster (issue 14, point 4): HTTPS on the gateway with
certificate reload, and metrics behind a bearer token on loopback.

alice, bob and carol each have a namespace and a key; the gateway serves
HTTPS with a certificate from deploy/gust-pki, and every daemon's /metrics
needs a token from a file. Attacks: plain HTTP to the TLS port; a client
that does not trust the cluster CA; reading /metrics with no token, a wrong
one or a prefix of it; a bad certificate pushed before a SIGHUP; a key that
is not the certificate's. Beside each, the legitimate use still works: the
API, a web action and a refused request over HTTPS, a reload that new
connections see while an old keep-alive connection carries on, /metrics with
the token, /health without one."""
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile

from cluster import SOURCE, Cluster, free_port, wait_until
from gtest import case, check, finish

work = tempfile.mkdtemp(prefix="gust-edges-")
pki = os.path.join(work, "pki")
GUST_PKI = os.path.join(SOURCE, "deploy", "gust-pki")


def run_pki(*args):
    subprocess.run([GUST_PKI, pki] + list(args), check=True, stdout=subprocess.DEVNULL)


run_pki("init")
run_pki("issue", "gateway", "edge")   # served first
run_pki("issue", "gateway", "edge2")  # the replacement
# The gateway's files: copies, replaced in place for the reload.
CERT, KEY = os.path.join(work, "api.crt"), os.path.join(work, "api.key")
shutil.copy(os.path.join(pki, "gateway-edge.crt"), CERT)
shutil.copy(os.path.join(pki, "gateway-edge.key"), KEY)
CA = os.path.join(pki, "ca.crt")

TOKEN = secrets.token_hex(32)
TOKEN_FILE = os.path.join(work, "metrics.token")
with open(os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
    f.write(TOKEN + "\n")
TOK = ["--metrics_token_file", TOKEN_FILE]


def leaf_sha256(path):
    """The SHA-256 of a PEM file's first certificate (DER), as a client sees it."""
    with open(path) as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


FP1 = leaf_sha256(os.path.join(pki, "gateway-edge.crt"))
FP2 = leaf_sha256(os.path.join(pki, "gateway-edge2.crt"))
assert FP1 != FP2

c = Cluster("secedges", gateway_cafile=CA, gateway_args=["--tls_cert_file", CERT,
                                                        "--tls_key_file", KEY] + TOK,
            scheduler_args=TOK, invoker_args=TOK).__enter__()
ctx = c.ssl_ctx

try:
    keys = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    for ns in keys:
        assert wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=keys[ns])[0] == 200, 10), ns

    def api(who, method, path, body=None, **kw):
        return c.api(method, "/api/v1/namespaces/_" + path, body, keys[who], **kw)

    def served_fingerprint():
        """The SHA-256 of the leaf a new TLS connection to the gateway gets."""
        with socket.create_connection(("127.0.0.1", c.gw_port), 5) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()

    def raw_tls(request, timeout=20):
        """Sends bytes over a fresh TLS connection; returns all it reads until close
        or the first complete answer (a short read timeout ends it)."""
        with socket.create_connection(("127.0.0.1", c.gw_port), 5) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.settimeout(timeout)
                t.sendall(request)
                out = b""
                try:
                    while True:
                        d = t.recv(65536)
                        if not d:
                            break
                        out += d
                        head, sep, body = out.partition(b"\r\n\r\n")
                        if sep:
                            cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                            if cl and len(body) >= int(cl[0].split(b":")[1]):
                                break
                except (socket.timeout, ssl.SSLError, ConnectionError):
                    pass
                return out

    @case
    def https_api_and_web():
        check("the gateway serves the first certificate", served_fingerprint() == FP1)
        st, body, _ = api("alice", "PUT", "/actions/hello?overwrite=true",
                          {"exec": {"kind": "python:3",
                                    "code": "def main(a):\n    return {'hi': a.get('name', 'x')}\n"}})
        check("create an action over HTTPS", st == 200, (st, body))
        st, body, _ = api("alice", "POST", "/actions/hello?blocking=true&result=true", {"name": "tls"})
        check("invoke over HTTPS", st == 200 and body == {"hi": "tls"}, (st, body))
        st, body, _ = api("bob", "GET", "/actions/hello")
        check("bob cannot read alice's action over HTTPS either", st == 404, (st, body))
        st, body, _ = api("carol", "PUT", "/actions/page?overwrite=true",
                          {"exec": {"kind": "python:3",
                                    "code": "def main(a):\n    return {'web': a.get('q', '')}\n"},
                           "annotations": [{"key": "web-export", "value": True}]})
        check("create a web action over HTTPS", st == 200, (st, body))
        st, body, _ = c.http("GET", c.api_host + "/api/v1/web/carol/default/page.json?q=ok",
                             context=ctx)
        check("a web action over HTTPS", st == 200 and body == {"web": "ok"}, (st, body))
        st, body, _ = c.http("GET", c.api_host + "/health", context=ctx)
        check("/health over HTTPS, no credentials", st == 200, (st, body))

    @case
    def untrusted_client_and_plain_http():
        try:
            c.http("GET", c.api_host + "/health", context=ssl.create_default_context(), timeout=5)
            check("a client without the cluster CA refuses the certificate", False, "connected")
        except Exception as e:  # urllib wraps the verification error
            check("a client without the cluster CA refuses the certificate",
                  "CERTIFICATE_VERIFY_FAILED" in str(e), repr(e))
        got = b""
        with socket.create_connection(("127.0.0.1", c.gw_port), 5) as s:
            s.settimeout(10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
            except (socket.timeout, ConnectionError):
                pass
        check("plain HTTP to the TLS port gets no HTTP answer", b"HTTP/" not in got, got[:200])
        try:
            st, _, _ = c.http("GET", "http://127.0.0.1:%d/health" % c.gw_port, timeout=10)
            check("urllib over plain HTTP to the TLS port fails", False, st)
        except Exception as e:
            check("urllib over plain HTTP to the TLS port fails", True, repr(e))
        st, _, _ = c.http("GET", c.api_host + "/health", context=ctx)
        check("the gateway still serves HTTPS after the garbage", st == 200, st)

    @case
    def refusals_over_tls():
        # The refusal of a request whose body is coming: in plain HTTP it is
        # written to the socket at once; under TLS it must come inside the session.
        body = b"x" * 200000
        out = raw_tls(b"POST /api/v1/namespaces/_/actions/hello?blocking=true HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nAuthorization: Basic bm86cGU=\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        head, _, rest = out.partition(b"\r\n\r\n")
        check("a bad key with a body gets 401 inside TLS",
              head.startswith(b"HTTP/1.1 401") and json.loads(rest or b"{}").get("code") == "EAUTH",
              out[:300])
        big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
        auth = "Basic " + __import__("base64").b64encode(keys["alice"].encode()).decode()
        out = raw_tls(b"POST /api/v1/namespaces/_/actions/hello?blocking=true HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nAuthorization: " + auth.encode() +
                      b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        head, _, rest = out.partition(b"\r\n\r\n")
        check("a body over max_payload gets 413 inside TLS",
              head.startswith(b"HTTP/1.1 413") and json.loads(rest or b"{}").get("code") == "ETOOBIG",
              out[:300])
        st, body, _ = api("alice", "POST", "/actions/hello?blocking=true&result=true", {"name": "after"})
        check("the right key still invokes", st == 200 and body == {"hi": "after"}, (st, body))

    @case
    def reload_on_sighup():
        old = http.client.HTTPSConnection("127.0.0.1", c.gw_port, context=ctx, timeout=10)
        old.request("GET", "/health")
        r = old.getresponse()
        r.read()
        check("an open keep-alive connection", r.status == 200, r.status)
        sock = old.sock
        check("it got the first certificate",
              hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest() == FP1)
        # A bad pair first: the gateway keeps the one it has.
        with open(CERT, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        c.procs["gateway"].p.send_signal(signal.SIGHUP)
        wait_until(lambda: "GW-TLS-RELOAD" in c.procs["gateway"].tail(50), 10)
        check("a bad certificate file is refused on SIGHUP (logged)",
              "GW-TLS-RELOAD" in c.procs["gateway"].tail(50), c.procs["gateway"].tail(10))
        check("and the gateway keeps serving the current certificate",
              c.procs["gateway"].alive() and served_fingerprint() == FP1)
        # The real replacement: both files, then SIGHUP.
        shutil.copy(os.path.join(pki, "gateway-edge2.crt"), CERT)
        shutil.copy(os.path.join(pki, "gateway-edge2.key"), KEY)
        c.procs["gateway"].p.send_signal(signal.SIGHUP)
        ok = wait_until(lambda: served_fingerprint() == FP2, 15)
        check("after SIGHUP a new connection sees the new certificate", ok, served_fingerprint())
        old.request("GET", "/api/v1/namespaces", headers={
            "Authorization": "Basic " + __import__("base64").b64encode(keys["alice"].encode()).decode()})
        r = old.getresponse()
        data = r.read()
        check("the old keep-alive connection still works, on the same socket",
              r.status == 200 and old.sock is sock, (r.status, data[:200]))
        check("and it kept the certificate it negotiated",
              hashlib.sha256(old.sock.getpeercert(binary_form=True)).hexdigest() == FP1)
        old.close()
        st, body, _ = api("alice", "POST", "/actions/hello?blocking=true&result=true", {"name": "new"})
        check("invoke over the new certificate", st == 200 and body == {"hi": "new"}, (st, body))
        check("the gateway was not restarted", c.procs["gateway"].alive())

    @case
    def mismatched_key_refused_at_start():
        port = free_port()
        log = os.path.join(work, "gw-bad.log")
        with open(log, "wb") as lf:
            p = subprocess.run([c.bin("gust-gateway"), "--port", str(port),
                                "--tls_cert_file", os.path.join(pki, "gateway-edge.crt"),
                                "--tls_key_file", os.path.join(pki, "gateway-edge2.key")] +
                               c.transport_args("gateway", "gateway-bad"),
                               env=c.common_env(), stdout=lf, stderr=subprocess.STDOUT, timeout=60)
        text = open(log).read()
        check("a gateway whose key is not its certificate's does not start",
              p.returncode != 0 and "is not the key of" in text, (p.returncode, text[-500:]))
        with open(os.path.join(pki, "gateway-edge2.key")) as f:
            key_body = "".join(f.read().splitlines()[1:-1])
        check("and its log holds no byte of the key", key_body[:40] not in text)
        p = subprocess.run([c.bin("gust-gateway"), "--port", str(port), "--tls_cert_file", CERT] +
                           c.transport_args("gateway", "gateway-bad"),
                           env=c.common_env(), capture_output=True, timeout=60)
        check("a certificate without a key is refused",
              p.returncode != 0 and b"tls_key_file" in p.stdout + p.stderr, p.stdout + p.stderr)

    def metrics_get(url, token=None, ctx_=None):
        hdrs = {"Authorization": "Bearer " + token} if token is not None else None
        return c.http("GET", url, headers=hdrs, context=ctx_, timeout=10)

    @case
    def metrics_token():
        ports = {"scheduler": c.sched_metrics, "invoker0": c.inv_metrics[0]}
        for name, port in ports.items():
            url = "http://127.0.0.1:%d" % port
            st, body, _ = metrics_get(url + "/metrics")
            check("%s /metrics without a token is 401" % name,
                  st == 401 and isinstance(body, dict) and body.get("code") == "EAUTH", (st, body))
            st, body, _ = metrics_get(url + "/metrics", "0" * 64)
            check("%s /metrics with a wrong token is 401" % name, st == 401, (st, body))
            st, body, _ = metrics_get(url + "/metrics", TOKEN[:32])
            check("%s /metrics with a prefix of the token is 401" % name, st == 401, (st, body))
            st, body, _ = c.http("GET", url + "/metrics", headers={"Authorization": "Basic " + TOKEN})
            check("%s /metrics with the token as Basic is 401" % name, st == 401, (st, body))
            st, body, _ = metrics_get(url + "/metrics", TOKEN)
            check("%s /metrics with the token is 200" % name,
                  st == 200 and "# TYPE" in str(body), (st, str(body)[:200]))
            st, body, _ = metrics_get(url + "/health")
            check("%s /health stays open" % name, st == 200, (st, body))
        st, body, _ = metrics_get(c.api_host + "/metrics", ctx_=ctx)
        check("gateway /metrics on the API port without a token is 401",
              st == 401 and body.get("code") == "EAUTH", (st, body))
        st, body, _ = metrics_get(c.api_host + "/metrics", "x" + TOKEN, ctx_=ctx)
        check("gateway /metrics with a wrong token is 401", st == 401, (st, body))
        st, body, _ = c.http("GET", c.api_host + "/metrics", auth=keys["alice"], context=ctx)
        check("a tenant's API key does not open /metrics", st == 401, (st, body))
        st, body, _ = metrics_get(c.api_host + "/metrics", TOKEN, ctx_=ctx)
        check("gateway /metrics with the token is 200",
              st == 200 and "gust_tls_reloads_total" in str(body), (st, str(body)[:200]))
        logs = "".join(p.tail(100000) for p in c.procs.values())
        check("no daemon logged the token", TOKEN not in logs and TOKEN[:16] not in logs)

    @case
    def metrics_on_loopback_by_default():
        def listeners(port):
            out = []
            for path in ("/proc/net/tcp", "/proc/net/tcp6"):
                with open(path) as f:
                    for line in f.readlines()[1:]:
                        parts = line.split()
                        addr, p = parts[1].split(":")
                        if int(p, 16) == port and parts[3] == "0A":  # LISTEN
                            out.append((path, addr))
            return out
        for name, port in (("scheduler", c.sched_metrics), ("invoker0", c.inv_metrics[0])):
            ls = listeners(port)
            check("%s metrics listen on 127.0.0.1 only" % name,
                  ls == [("/proc/net/tcp", "0100007F")], ls)

    @case
    def bad_token_files():
        port = free_port()
        bad = os.path.join(work, "bad.token")
        with open(bad, "w") as f:
            f.write("secret with spaces\n")
        for what, path in (("missing", os.path.join(work, "nope.token")), ("malformed", bad)):
            try:
                p = subprocess.run([c.bin("gust-scheduler"), "--id", "badtok", "--metrics_port", str(port),
                                    "--metrics_token_file", path] +
                                   c.transport_args("scheduler", "badtok"), env=c.common_env(),
                                   capture_output=True, timeout=60)
                out = (p.stdout + p.stderr).decode(errors="replace")
                check("a %s token file stops the daemon, naming the key" % what,
                      p.returncode != 0 and "metrics_token_file" in out, (p.returncode, out[-400:]))
                check("the %s token file's content is not printed" % what, "spaces" not in out, out[-400:])
            except subprocess.TimeoutExpired:
                check("a %s token file stops the daemon" % what, False, "still running after 60 s")

    @case
    def quickstart_state_dir():
        # quickstart on free ports in a state dir of its own, on this build;
        # the dir is left 0755 with a 0644 file, as an older quickstart made it.
        state = os.path.join(work, "qs")
        os.makedirs(state)
        os.chmod(state, 0o755)
        with open(os.path.join(state, "old.log"), "w") as f:
            f.write("from an older quickstart\n")
        os.chmod(os.path.join(state, "old.log"), 0o644)
        ports = {k: free_port() for k in ("GUST_PORT", "GUST_ETCD_PORT", "GUST_ETCD_PEER_PORT",
                                          "GUST_REDIS_PORT", "GUST_SCHEDULER_METRICS_PORT",
                                          "GUST_INVOKER_METRICS_PORT", "GUST_TRIGGER_METRICS_PORT")}
        env = dict(os.environ, GUST_STATE_DIR=state, GUST_BUILD_DIR=os.path.dirname(os.path.dirname(
            c.bin("gust-gateway"))), **{k: str(v) for k, v in ports.items()})
        for k in ("GUST_ETCD", "GUST_REDIS", "GUST_APIHOST", "GUST_AUTH"):
            env.pop(k, None)
        qs = os.path.join(SOURCE, "deploy", "quickstart")
        try:
            p = subprocess.run([qs], env=env, capture_output=True, timeout=300)
            out = p.stdout.decode(errors="replace")
            check("quickstart starts and hello answers", p.returncode == 0 and "Hello, Gust!" in out,
                  (p.returncode, out[-600:], p.stderr.decode(errors="replace")[-600:]))
            bad = []
            for root, dirs, files in os.walk(state):
                rel = os.path.relpath(root, state)
                if rel == "invoker" or rel.startswith("invoker" + os.sep):
                    # sandbox roots: modes the sandbox's users need, under a 0700 dir
                    dirs[:] = []
                    continue
                for n in dirs + files:
                    path = os.path.join(root, n)
                    st = os.lstat(path)
                    if not os.path.islink(path) and st.st_mode & 0o077:
                        bad.append("%o %s" % (st.st_mode & 0o777, os.path.relpath(path, state)))
            check("the state dir is 0700", os.stat(state).st_mode & 0o777 == 0o700,
                  oct(os.stat(state).st_mode))
            check("the invoker's dir in it is 0700",
                  os.stat(os.path.join(state, "invoker")).st_mode & 0o777 == 0o700)
            check("no file or dir in it is open to group or others (old ones fixed)", not bad, bad[:20])
            for n in ("pki/ca.key", "pki/ca.crt", "pki/gateway-https.key", "metrics.token",
                      "guest.key", "logs/etcd.log", "logs/redis.log", "pids/gateway.pid"):
                check("quickstart wrote %s" % n, os.path.exists(os.path.join(state, n)))
            with open(os.path.join(state, "metrics.token")) as f:
                tok = f.read().strip()
            with open(os.path.join(state, "guest.key")) as f:
                guest = f.read().strip()
            check("it prints the guest key", guest in out)
            check("it prints neither the metrics token nor a private key",
                  tok not in out and "PRIVATE KEY" not in out and tok not in p.stderr.decode(errors="replace"))
            m = "http://127.0.0.1:%d/metrics" % ports["GUST_SCHEDULER_METRICS_PORT"]
            st, _, _ = metrics_get(m)
            check("quickstart's scheduler /metrics wants the token", st == 401, st)
            st, _, _ = metrics_get(m, tok)
            check("and answers with it", st == 200, st)
            st, _, _ = c.http("GET", "http://127.0.0.1:%d/metrics" % ports["GUST_PORT"])
            check("quickstart's gateway /metrics wants the token", st == 401, st)
        finally:
            p = subprocess.run([qs, "stop"], env=env, capture_output=True, timeout=120)
        check("quickstart stop stops it", p.returncode == 0 and b"stopped gateway" in p.stdout, p.stdout)
        try:
            socket.create_connection(("127.0.0.1", ports["GUST_PORT"]), 2).close()
            check("nothing listens on quickstart's gateway port after stop", False)
        except OSError:
            check("nothing listens on quickstart's gateway port after stop", True)

finally:
    c.__exit__(None, None, None)
    shutil.rmtree(work, ignore_errors=True)
finish()
