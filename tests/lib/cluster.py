"""cluster.py - start a real Gust cluster for tests and benchmarks.

Starts etcd, Redis, gust-scheduler, gust-invoker(s) and gust-gateway on free
loopback ports, everything under one temp dir, and tears it all down again
(even when a test fails). Standard library only.

The daemons talk over mutual TLS (tls+tcp://) with certificates from a PKI
made for the cluster by deploy/gust-pki in <dir>/pki (pki_issue() gives a
test its own). Cluster(tls=False) runs them with insecure_transport and
tcp:// instead, for a test that is about that mode.

    with Cluster("skeleton") as c:
        c.create_namespace("guest")
        auth = c.create_key("guest")
        status, body, headers = c.api("PUT", "/api/v1/namespaces/_/actions/hello", {...}, auth)
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

BUILD = os.environ.get("GUST_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SOURCE = os.environ.get("GUST_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")

_used_ports = set()


def free_port():
    """A free TCP port on 127.0.0.1, never handed out twice in one process."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _used_ports:
            _used_ports.add(p)
            return p


def wait_tcp(port, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


class Proc:
    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = argv
        self.log = os.path.join(logdir, name + ".log")
        self.env = env
        self.p = None

    def start(self):
        logf = open(self.log, "ab")
        self.p = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=self.env,
                                  start_new_session=True)
        logf.close()
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.p is None:
            return
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, tag="test", invokers=1, memory_mb=2048, gateway_threads=2, log_level="info",
                 keep=False, base_dir=None, schedulers=1, invoker_args=(), scheduler_args=(),
                 trigger_daemons=0, kafka_mock=False, kafka_topics=(), trigger_args=(),
                 gateway_args=(), gateway_cafile=None, tls=True, secure_stores=True):
        if os.geteuid() != 0:
            skip("the invoker needs root for namespaces")
        for prog in ("etcd", "redis-server"):
            if shutil.which(prog) is None:
                skip(prog + " is not installed (deploy/install-deps installs it)")
        self.dir = base_dir or tempfile.mkdtemp(prefix="gust-%s-" % tag)
        os.makedirs(self.dir, exist_ok=True)
        self.keep = keep
        self.n_invokers = invokers
        self.memory_mb = memory_mb
        self.gateway_threads = gateway_threads
        self.log_level = log_level
        self.procs = {}
        self.etcd_port = free_port()
        self.etcd_peer = free_port()
        self.redis_port = free_port()
        self.gw_port = free_port()
        self.sched_metrics = free_port()
        self.n_schedulers = schedulers
        self.invoker_args = list(invoker_args)
        self.scheduler_args = list(scheduler_args)
        # scheduler name -> its /health and /metrics port
        self.sched_ports = {"scheduler": self.sched_metrics}
        for i in range(2, schedulers + 1):
            self.sched_ports["scheduler%d" % i] = free_port()
        self.inv_metrics = [free_port() for _ in range(invokers)]
        self.etcd_url = "http://127.0.0.1:%d" % self.etcd_port
        self._stores_init(secure_stores)
        # gust-trigger instances and the Kafka mock broker (off unless asked)
        self.n_triggers = trigger_daemons
        self.trigger_args = list(trigger_args)
        self.trig_metrics = {}
        self.want_kafka = kafka_mock
        self.kafka_topics = list(kafka_topics)
        self.kafka_bootstrap = None
        # extra gust-gateway flags; gateway_cafile: the gateway serves HTTPS
        # (gateway_args name its --tls_cert_file/--tls_key_file) and clients
        # verify it with this CA file
        self.gateway_args = list(gateway_args)
        self.ssl_ctx = ssl.create_default_context(cafile=gateway_cafile) \
            if gateway_cafile else None
        # mutual TLS between the daemons (see the module's docstring)
        self.tls = tls
        self.pki = os.path.join(self.dir, "pki")

    # --- lifecycle ---------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.dump_logs()
            self.stop()
            raise
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.dump_logs()
        self.stop()
        return False

    def bin(self, name):
        sub = {"gust-gateway": "gateway", "gust-scheduler": "scheduler",
               "gust-invoker": "invoker", "gust": "cli", "gust-trigger": "triggers",
               "gust-kafka-mock": "triggers"}[name]
        return os.path.join(BUILD, sub, name)

    def start(self):
        if self.tls:
            self.make_pki()
        self.start_etcd()
        self.start_redis()
        self.provision_stores()
        for name, port in self.sched_ports.items():
            self.start_scheduler(name, port)
        for i in range(self.n_invokers):
            self.start_invoker(i)
        self.start_gateway()
        self.wait_ready()
        if self.want_kafka:
            self.start_kafka_mock(self.kafka_topics)
        for i in range(self.n_triggers):
            self.start_trigger(i)

    # client URLs etcd advertises besides its own (a test's "other node")
    etcd_advertise_extra = ()

    def start_etcd(self):
        d = os.path.join(self.dir, "etcd")
        p = Proc("etcd", ["etcd", "--name", "default", "--data-dir", d,
                          "--listen-client-urls", self.etcd_url,
                          "--advertise-client-urls",
                          ",".join([self.etcd_url] + list(self.etcd_advertise_extra)),
                          "--listen-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer,
                          "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer,
                          "--initial-cluster", "default=http://127.0.0.1:%d" % self.etcd_peer,
                          "--max-request-bytes", "33554432",
                          "--logger", "zap", "--log-level", "warn"] + self.etcd_tls_args(),
                 self.dir)
        self.procs["etcd"] = p.start()
        if not wait_tcp(self.etcd_port):
            raise RuntimeError("etcd did not start:\n" + p.tail())
        end = time.time() + 20
        while time.time() < end:
            try:
                self.etcd("/v3/kv/range", {"key": self._b64("/")})
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("etcd does not answer:\n" + p.tail())

    def start_redis(self):
        p = Proc("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", self.dir] +
                 self.redis_acl_args(), self.dir)
        self.procs["redis"] = p.start()
        if not wait_tcp(self.redis_port):
            raise RuntimeError("redis did not start:\n" + p.tail())

    def common_env(self, role="admin"):
        env = dict(os.environ)
        env["GUST_ETCD"] = self.etcd_url
        env["GUST_REDIS"] = "127.0.0.1:%d" % self.redis_port
        env["GUST_LOG_LEVEL"] = self.log_level
        env.update(self.stores_env(role))
        return env

    # --- the PKI of the nng planes --------------------------------------------
    def make_pki(self):
        """The cluster CA and one issuing CA per role, in self.pki."""
        if not os.path.exists(os.path.join(self.pki, "ca.crt")):
            subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), self.pki, "init"],
                           check=True, stdout=subprocess.DEVNULL)

    def pki_issue(self, role, name):
        """(cert file, key file) of a certificate of `role` (gateway, scheduler,
        invoker, trigger, ...) named `name`, issued once by this cluster's PKI."""
        base = os.path.join(self.pki, "%s-%s" % (role, name))
        if not os.path.exists(base + ".crt"):
            subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), self.pki, "issue",
                            role, name], check=True, stdout=subprocess.DEVNULL)
        return base + ".crt", base + ".key"

    def transport_args(self, role, name, listen=()):
        """A daemon's flags for the nng planes: its certificate, or (tls=False)
        insecure_transport with tcp:// on each listen key."""
        if not self.tls:
            args = ["--insecure_transport"]
            for k in listen:
                args += ["--" + k, "tcp://127.0.0.1:0"]
            return args
        crt, key = self.pki_issue(role, name)
        return ["--transport_cert", crt, "--transport_key", key, "--transport_ca_dir", self.pki]

    def start_scheduler(self, name="scheduler", metrics_port=None):
        port = metrics_port or self.sched_ports.get(name) or self.sched_metrics
        self.sched_ports[name] = port
        argv = [self.bin("gust-scheduler"), "--id", name, "--metrics_port", str(port)] + \
            self.transport_args("scheduler", name, ("listen", "status_listen")) + \
            self.scheduler_args
        self.procs[name] = Proc(name, argv, self.dir, self.common_env("scheduler")).start()

    def start_invoker(self, i):
        name = "invoker%d" % i
        argv = [self.bin("gust-invoker"), "--id", name,
                "--state_dir", os.path.join(self.dir, name),
                "--runtime_dir", os.path.join(SOURCE, "invoker", "runtimes"),
                "--memory_mb", str(self.memory_mb)]
        while len(self.inv_metrics) <= i:
            self.inv_metrics.append(free_port())
        argv += ["--metrics_port", str(self.inv_metrics[i])] + \
            self.transport_args("invoker", name, ("listen",)) + self.invoker_args
        self.procs[name] = Proc(name, argv, self.dir, self.common_env("invoker")).start()

    def start_gateway(self):
        argv = [self.bin("gust-gateway"), "--port", str(self.gw_port),
                "--threads", str(self.gateway_threads)] + self.gateway_args + \
            self.transport_args("gateway", "gateway")
        self.procs["gateway"] = Proc("gateway", argv, self.dir, self.common_env("gateway")).start()

    def start_kafka_mock(self, topics=()):
        """Starts gust-kafka-mock (librdkafka's mock cluster on loopback) and
        returns its bootstrap servers; topics are "name:partitions"."""
        f = os.path.join(self.dir, "kafka.bootstrap")
        argv = [self.bin("gust-kafka-mock"), "--bootstrap-file", f]
        for t in topics:
            argv += ["--topic", t]
        self.procs["kafka"] = Proc("kafka", argv, self.dir).start()
        end = time.time() + 10
        while time.time() < end and not os.path.exists(f):
            if not self.procs["kafka"].alive():
                raise RuntimeError("gust-kafka-mock exited:\n" + self.procs["kafka"].tail())
            time.sleep(0.02)
        with open(f) as fh:
            self.kafka_bootstrap = fh.read().strip()
        return self.kafka_bootstrap

    def start_trigger(self, i, extra=()):
        """Starts gust-trigger instance i (id trigger<i>) and waits for /health."""
        name = "trigger%d" % i
        port = self.trig_metrics.get(i) or free_port()
        self.trig_metrics[i] = port
        argv = [self.bin("gust-trigger"), "--id", name, "--metrics_port", str(port),
                "--api_host", self.api_host] + self.transport_args("trigger", name) + \
            self.trigger_args + list(extra)
        self.procs[name] = Proc(name, argv, self.dir, self.common_env("trigger")).start()
        end = time.time() + 15
        while time.time() < end:
            if not self.procs[name].alive():
                raise RuntimeError("%s exited:\n%s" % (name, self.procs[name].tail()))
            try:
                st, _, _ = self.http("GET", "http://127.0.0.1:%d/health" % port, timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("%s not healthy:\n%s" % (name, self.procs[name].tail()))

    def trigger_metrics(self, i):
        """gust-trigger i's metrics as {"name{labels}": value}."""
        st, body, _ = self.http("GET", "http://127.0.0.1:%d/metrics" % self.trig_metrics[i],
                                timeout=5)
        out = {}
        for line in (body if isinstance(body, str) else "").splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def etcd_get(self, key):
        """The value at key (str) or None."""
        r = self.etcd("/v3/kv/range", {"key": self._b64(key)})
        kvs = r.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def redis(self, *args):
        """One Redis command over RESP (stdlib only), as the operator (Redis
        user gust-admin); returns the decoded reply."""
        s = self.redis_socket(5)
        try:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _resp_read(f)
        finally:
            s.close()

    def wait_ready(self, timeout=30.0):
        """Until the gateway serves, knows a scheduler, and the scheduler knows
        every invoker."""
        end = time.time() + timeout
        last = ""
        while time.time() < end:
            for name, p in self.procs.items():
                if not p.alive():
                    raise RuntimeError("%s exited:\n%s" % (name, p.tail()))
            try:
                st, _, _ = self.http("GET", self.api_host + "/health", context=self.ssl_ctx)
                lead = self.leader()
                sb = self.sched_health(lead) if lead else {}
                if st == 200 and lead and sb.get("invokers", 0) >= self.n_invokers:
                    return
                last = "gateway %s, leader %s %s" % (st, lead, sb)
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError("cluster not ready: " + last)

    def sched_health(self, name):
        """The /health document of a scheduler ({} if it does not answer)."""
        try:
            st, body, _ = self.http("GET", "http://127.0.0.1:%d/health" % self.sched_ports[name],
                                    timeout=2)
            return body if isinstance(body, dict) else {}
        except OSError:
            return {}

    def leader(self):
        """The name of the leading scheduler, or None."""
        for name in self.sched_ports:
            p = self.procs.get(name)
            if p and p.alive() and self.sched_health(name).get("leader"):
                return name
        return None

    def metric(self, port, name, labels=None):
        """Sum of a Prometheus metric's samples on a daemon's /metrics (0 if absent).
        labels: a substring the sample's label set must contain."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            head, _, val = line.rpartition(" ")
            mname = head.split("{", 1)[0]
            if mname != name or (labels and labels not in head):
                continue
            total += float(val)
        return total

    def stop(self):
        for name in ["gateway"] + [n for n in self.procs if n not in ("gateway", "etcd", "redis")] + ["redis", "etcd"]:
            p = self.procs.get(name)
            if p:
                p.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for name, p in self.procs.items():
            sys.stderr.write("---- %s log (last lines) ----\n%s\n" % (name, p.tail(40)))

    # --- the stores' credentials: etcd over TLS with users (RBAC), Redis ACL users
    # A cluster's PKI (deploy/gust-pki) is in <dir>/pki, the passwords and
    # Redis's ACL file (deploy/gust-stores) in <dir>/stores. Each daemon gets
    # its role's etcd client certificate, etcd user and Redis user (files
    # named in GUST_* variables, as in its config table); the harness's own
    # calls (etcd(), redis(), the gust CLI) are the operator's: etcd user root,
    # Redis user gust-admin, the admin certificate. secure_stores=False runs
    # plain http etcd and an open Redis with insecure_stores.
    def _stores_init(self, secure):
        self.secure_stores = secure
        self.pki = os.path.join(self.dir, "pki")
        self.stores_dir = os.path.join(self.dir, "stores")
        self._etcd_auth_on = False
        self._etcd_token = None
        self._etcd_ssl = None
        if secure:
            self.etcd_url = "https://127.0.0.1:%d" % self.etcd_port

    def _deploy(self, tool, *args):
        r = subprocess.run([os.path.join(SOURCE, "deploy", tool)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("deploy/%s %s: %s" % (tool, " ".join(args), r.stdout.decode()))

    def stores_cert(self, role, name="stores", kind="etcd-client"):
        """(certificate, key) of role's certificate NAME in the cluster's PKI,
        issued on first use: an etcd client certificate (no CN: etcd's
        gateway refuses one with a CN once auth is on) unless kind="issue"."""
        if not os.path.exists(os.path.join(self.pki, "ca.crt")):
            self._deploy("gust-pki", self.pki, "init")
        base = os.path.join(self.pki, "%s-%s%s" % (role, name,
                                                    "-etcd" if kind == "etcd-client" else ""))
        if not os.path.exists(base + ".crt"):
            self._deploy("gust-pki", self.pki, kind, role, name)
        return base + ".crt", base + ".key"

    def etcd_tls_args(self):
        if not self.secure_stores:
            return []
        cert, key = self.stores_cert("etcd", "etcd0", kind="issue")
        return ["--cert-file", cert, "--key-file", key, "--client-cert-auth",
                "--trusted-ca-file", os.path.join(self.pki, "ca.crt")]

    def redis_acl_args(self):
        if not self.secure_stores:
            return []
        self._deploy("gust-stores", self.stores_dir, "init")
        return ["--aclfile", os.path.join(self.stores_dir, "redis.acl")]

    def provision_stores(self):
        """etcd's roles, users and auth (deploy/gust-stores), as the operator;
        the operator's credentials then go to os.environ for the gust CLI
        that tests run."""
        if not self.secure_stores:
            os.environ["GUST_INSECURE_STORES"] = "true"
            return
        env = self.stores_env("admin")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            self._deploy("gust-stores", self.stores_dir, "etcd", self.etcd_url)
        except BaseException:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            raise
        self._etcd_auth_on = True

    def stores_env(self, role):
        """The GUST_* variables that give a daemon of role (or the operator,
        "admin") its credentials for etcd and Redis."""
        if not self.secure_stores:
            return {"GUST_INSECURE_STORES": "true"}
        cert, key = self.stores_cert(role)
        eu = "root" if role == "admin" else "gust-" + role
        ru = "gust-admin" if role == "admin" else "gust-" + role
        return {"GUST_ETCD_CA": os.path.join(self.pki, "ca.crt"),
                "GUST_ETCD_CERT": cert, "GUST_ETCD_KEY": key,
                "GUST_ETCD_USER": eu,
                "GUST_ETCD_PASSWORD_FILE": os.path.join(self.stores_dir, "etcd-%s.password" % eu),
                "GUST_REDIS_USER": ru,
                "GUST_REDIS_PASSWORD_FILE": os.path.join(self.stores_dir,
                                                         "redis-%s.password" % ru),
                "GUST_INSECURE_STORES": "false"}

    def store_password(self, store, user):
        with open(os.path.join(self.stores_dir, "%s-%s.password" % (store, user))) as f:
            return f.readline().strip()

    def etcd_ssl(self, role="admin"):
        """An SSL context that trusts the cluster CA and presents role's
        certificate (None with secure_stores=False)."""
        if not self.secure_stores:
            return None
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.crt"))
        ctx.load_cert_chain(*self.stores_cert(role))
        return ctx

    def _etcd_ctx(self):
        if self.secure_stores and self._etcd_ssl is None:
            self._etcd_ssl = self.etcd_ssl("admin")
        return self._etcd_ssl

    def etcd_token(self, user, password, ctx):
        """An etcd auth token for user (over ctx's TLS)."""
        req = urllib.request.Request(self.etcd_url + "/v3/auth/authenticate",
                                     data=json.dumps({"name": user, "password": password}).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return json.loads(r.read())["token"]

    def _etcd_admin_token(self, renew=False):
        if not self._etcd_auth_on:
            return None
        if renew or self._etcd_token is None:
            self._etcd_token = self.etcd_token("root", self.store_password("etcd", "root"),
                                               self._etcd_ctx())
        return self._etcd_token

    def redis_socket(self, timeout=5, user="gust-admin"):
        """A socket to the cluster's Redis, authenticated as user."""
        s = socket.create_connection(("127.0.0.1", self.redis_port), timeout)
        if self.secure_stores and user:
            pw = self.store_password("redis", user).encode()
            u = user.encode()
            s.sendall(b"*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" %
                      (len(u), u, len(pw), pw))
            line = b""
            while not line.endswith(b"\r\n"):
                ch = s.recv(1)
                if not ch:
                    raise OSError("redis closed the connection during AUTH")
                line += ch
            if not line.startswith(b"+OK"):
                s.close()
                raise RuntimeError("redis AUTH %s: %s" % (user, line.decode().strip()))
        return s

    # --- etcd and admin ----------------------------------------------------
    @staticmethod
    def _b64(s):
        return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()

    def etcd(self, path, body):
        """One call as the operator (etcd user root, the admin certificate)."""
        for attempt in range(2):
            req = urllib.request.Request(self.etcd_url + path, data=json.dumps(body).encode(),
                                         method="POST")
            tok = self._etcd_admin_token(renew=attempt > 0)
            if tok:
                req.add_header("Authorization", tok)
            try:
                with urllib.request.urlopen(req, timeout=5, context=self._etcd_ctx()) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                raw = e.read()
                msg = raw.decode(errors="replace")
                if attempt == 0 and ("invalid auth token" in msg or "auth store is old" in msg):
                    continue
                # the same error, its body readable again by the caller
                import io
                raise urllib.error.HTTPError(e.url, e.code, e.msg, e.hdrs, io.BytesIO(raw))

    def etcd_put(self, key, value):
        self.etcd("/v3/kv/put", {"key": self._b64(key), "value": self._b64(value)})

    def set_policy(self, targets):
        """The cluster-wide policy: targets outside the cluster (HOST[:PORT],
        CIDR) every namespace's feeds and bindings may reach (gust/scope.h)."""
        self.etcd_put("/gust/policy/cluster", json.dumps({"targets": list(targets)}))

    def grant(self, ns, *targets):
        """Adds targets to ns's own grants (/gust/grants/<ns>), keeping the
        others, as `gust admin grant add` does."""
        key = "/gust/grants/" + ns
        cur = json.loads(self.etcd_get(key) or "{}")
        have = cur.setdefault("targets", [])
        for t in targets:
            if t not in have:
                have.append(t)
        self.etcd_put(key, json.dumps(cur))

    def revoke(self, ns, *targets):
        key = "/gust/grants/" + ns
        cur = json.loads(self.etcd_get(key) or "{}")
        cur["targets"] = [t for t in cur.get("targets", []) if t not in targets]
        self.etcd_put(key, json.dumps(cur))

    def grant_kafka(self, ns):
        """Grants ns every broker of the Kafka mock (each host:port exactly:
        loopback is reachable only through an address entry)."""
        self.grant(ns, *[b.strip() for b in self.kafka_bootstrap.split(",") if b.strip()])

    def create_namespace(self, ns, limits=None):
        """Tests get generous limits unless they ask for others (OpenWhisk's
        defaults, 30 concurrent and 60 a minute, would throttle the suite)."""
        if limits is None:
            limits = {"concurrentInvocations": 100000, "invocationsPerMinute": 10000000,
                      "firesPerMinute": 10000000}
        self.etcd_put("/gust/namespaces/" + ns, json.dumps(
            {"name": ns, "created": int(time.time() * 1000), "limits": limits}))

    def create_key(self, ns):
        u = str(uuid.uuid4())
        alphabet = string.ascii_letters + string.digits
        k = "".join(secrets.choice(alphabet) for _ in range(64))
        salt = secrets.token_hex(16)
        digest = hashlib.sha256((salt + k).encode()).hexdigest()
        self.etcd_put("/gust/keys/" + u, json.dumps({"uuid": u, "namespace": ns, "salt": salt,
                                                     "hash": digest}))
        return "%s:%s" % (u, k)

    # --- HTTP --------------------------------------------------------------
    @property
    def api_host(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl_ctx else "http", self.gw_port)

    @staticmethod
    def http(method, url, body=None, auth=None, headers=None, timeout=70, context=None):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if auth:
            hdrs["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
                raw, status, rh = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, status, rh = e.read(), e.code, dict(e.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed, rh

    def api(self, method, path, body=None, auth=None, **kw):
        kw.setdefault("context", self.ssl_ctx)
        return self.http(method, self.api_host + path, body, auth, **kw)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError("redis: " + rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("redis: unexpected reply %r" % line)


def wait_until(fn, timeout=10.0, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()
