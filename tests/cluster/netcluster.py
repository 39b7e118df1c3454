"""netcluster.py - a multi-host Gust cluster on one machine.

Each host is a network namespace (gustc-<host>) with its own address on the
bridge gustc0 (10.214.0.0/24, the root namespace holds 10.214.0.1), joined by a
veth pair whose root end is named gustc-<host>. Every daemon runs inside its
host's namespace, binds to that host's address, and finds the others only
through its configuration (etcd endpoints, Redis address) and etcd:

    store1 10.214.0.11   etcd member 1, Redis master (appendonly)
    store2 10.214.0.12   etcd member 2, Redis replica (replicaof store1)
    store3 10.214.0.13   etcd member 3, the Kafka-protocol broker (when built)
    ctl1   10.214.0.21   gateway, scheduler, trigger daemon (when built)
    ctl2   10.214.0.22   gateway, scheduler, trigger daemon (when built)
    work1  10.214.0.31   invoker        ... workN 10.214.0.(30+N)

The Kafka-protocol broker (gust-kafka-mock, librdkafka's mock cluster) can
only listen on its namespace's loopback and advertises 127.0.0.1:<port> in its
metadata, so tcprelay.py relays it: on store3 from 10.214.0.13:<port> to its
loopback, and on every trigger host from 127.0.0.1:<port> to 10.214.0.13:<port>
(kafka_bootstrap, "127.0.0.1:<port>", is then the same address on every host
that runs a trigger daemon, and on store3 itself, where kcat produces).

The test process reaches every daemon from the root namespace through the
bridge. Everything the harness creates carries the gustc prefix; stop() removes
all of it (processes, namespaces, veths, the bridge) and runs even when start
fails; `python3 netcluster.py --cleanup` removes the leftovers of a crashed
run, `--up` builds a cluster and waits (for poking at it by hand).

Adding a daemon kind is one start_<kind>() method: pick its host, build its
argv, self._spawn(name, host, argv).

The daemons' nng planes are mutual TLS (tls+tcp:// on each host's address):
deploy/gust-pki makes the cluster's CA in <dir>/pki and one certificate per
daemon, named after it, with its host's address as subject alternative name.
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from cluster import Proc, skip, _resp_read  # noqa: E402  (the single-host harness's helpers)

BUILD = os.environ.get("GUST_BUILD_DIR") or os.path.join(HERE, "..", "..", "build")
SOURCE = os.environ.get("GUST_SOURCE_DIR") or os.path.join(HERE, "..", "..")

PREFIX = "gustc"
BRIDGE = "gustc0"
SUBNET = "10.214.0"
ROOT_IP = SUBNET + ".1"
GW_PORT, SCHED_METRICS, INV_METRICS, TRIG_METRICS = 3233, 9320, 9321, 9340
ETCD_CLIENT, ETCD_PEER, REDIS_PORT = 2379, 2380, 6379

# No proxy, ever: every address here is on the harness's own bridge.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sh(*argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r.stdout


def http(method, url, body=None, auth=None, timeout=70):
    """(status, parsed body, headers); raises OSError when nothing answered."""
    data, hdrs = None, {}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if auth:
        hdrs["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _opener.open(req, timeout=timeout) as r:
            raw, status, rh = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, rh = e.read(), e.code, dict(e.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed, rh


def cleanup(verbose=False):
    """Removes everything named gustc*: processes in gustc-* namespaces (by pid),
    the namespaces, the veths and the bridge. Safe to run at any time."""
    for ns in sh("ip", "netns", "list", check=False).split("\n"):
        ns = ns.split(" ")[0].strip()
        if not ns.startswith(PREFIX + "-"):
            continue
        for _ in range(3):
            pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        sh("ip", "netns", "del", ns, check=False)
        if verbose:
            print("removed namespace", ns)
    for line in sh("ip", "-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            sh("ip", "link", "del", name, check=False)
            if verbose:
                print("removed link", name)


class Host:
    def __init__(self, name, ip):
        self.name, self.ip = name, ip
        self.ns = "%s-%s" % (PREFIX, name)
        self.veth = "%s-%s" % (PREFIX, name)  # root end; at most 15 characters
        assert len(self.veth) <= 15, self.veth

    def cut(self):
        sh("ip", "link", "set", self.veth, "down")

    def restore(self):
        sh("ip", "link", "set", self.veth, "up")


class NetCluster:
    def __init__(self, tag="net", invokers=3, memory_mb=2048, log_level="info", keep=False,
                 gateways=2, schedulers=2, triggers=2, invoker_args=(), scheduler_args=(),
                 kafka_topics=(), kafka=True):
        if os.geteuid() != 0:
            skip("network namespaces and the invoker need root")
        for prog in ("etcd", "redis-server", "ip", "nsenter"):
            if shutil.which(prog) is None:
                skip(prog + " is not installed (deploy/install-deps installs it)")
        self.dir = tempfile.mkdtemp(prefix="gustc-%s-" % tag)
        self.keep = keep
        self.log_level = log_level
        self.memory_mb = memory_mb
        self.invoker_args, self.scheduler_args = list(invoker_args), list(scheduler_args)
        self.procs = {}
        self.hosts = {}
        for i in (1, 2, 3):
            self._host("store%d" % i, "%s.%d" % (SUBNET, 10 + i))
        self.n_ctl = max(gateways, schedulers, triggers if self.have("gust-trigger") else 0)
        for i in range(1, self.n_ctl + 1):
            self._host("ctl%d" % i, "%s.%d" % (SUBNET, 20 + i))
        for i in range(1, invokers + 1):
            self._host("work%d" % i, "%s.%d" % (SUBNET, 30 + i))
        self.gateways = ["gateway%d" % i for i in range(1, gateways + 1)]
        self.schedulers = ["scheduler%d" % i for i in range(1, schedulers + 1)]
        self.invokers = ["invoker%d" % i for i in range(1, invokers + 1)]
        self.triggers = (["trigger%d" % i for i in range(1, triggers + 1)]
                         if self.have("gust-trigger") else [])
        self.kafka_bootstrap = None
        self.kafka_topics = list(kafka_topics)
        self.want_kafka = kafka
        self.etcd_endpoints = ",".join("http://%s:%d" % (self.hosts["store%d" % i].ip, ETCD_CLIENT)
                                       for i in (1, 2, 3))
        self.redis_addr = "%s:%d" % (self.hosts["store1"].ip, REDIS_PORT)
        self.pki = os.path.join(self.dir, "pki")

    def _host(self, name, ip):
        self.hosts[name] = Host(name, ip)

    # --- where things are -------------------------------------------------
    @staticmethod
    def bin(name):
        sub = {"gust-gateway": "gateway", "gust-scheduler": "scheduler", "gust-invoker": "invoker",
               "gust": "cli", "gust-trigger": "triggers", "gust-kafka-mock": "triggers"}[name]
        return os.path.join(BUILD, sub, name)

    @classmethod
    def have(cls, name):
        return os.access(cls.bin(name), os.X_OK)

    def host_of(self, proc):
        """gateway2 -> ctl2, invoker3 -> work3, etcd1 -> store1."""
        return self.procs[proc].host

    def gw_url(self, name):
        return "http://%s:%d" % (self.hosts["ctl" + name[len("gateway"):]].ip, GW_PORT)

    def sched_url(self, name):
        return "http://%s:%d" % (self.hosts["ctl" + name[len("scheduler"):]].ip, SCHED_METRICS)

    def inv_url(self, name):
        return "http://%s:%d" % (self.hosts["work" + name[len("invoker"):]].ip, INV_METRICS)

    # --- lifecycle ----------------------------------------------------------
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

    def start(self):
        cleanup()  # a crashed earlier run must not be in the way
        if not os.path.exists(os.path.join(self.pki, "ca.crt")):
            sh(os.path.join(SOURCE, "deploy", "gust-pki"), self.pki, "init")
        self.start_network()
        for i in (1, 2, 3):
            self.start_etcd(i)
        self.wait_etcd()
        self.start_redis_master()
        self.start_redis_replica()
        if self.want_kafka and self.have("gust-kafka-mock"):
            self.start_kafka()
        for name in self.schedulers:
            self.start_scheduler(name)
        for name in self.invokers:
            self.start_invoker(name)
        for name in self.gateways:
            self.start_gateway(name)
        for name in self.triggers:
            self.start_trigger(name)
        self.wait_ready()

    def start_network(self):
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", ROOT_IP + "/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for h in self.hosts.values():
            sh("ip", "netns", "add", h.ns)
            sh("ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
            sh("ip", "link", "set", h.veth, "master", BRIDGE, "up")
            sh("ip", "-n", h.ns, "addr", "add", h.ip + "/24", "dev", "eth0")
            sh("ip", "-n", h.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", h.ns, "link", "set", "lo", "up")
            sh("ip", "-n", h.ns, "route", "add", "default", "via", ROOT_IP)

    def stop(self):
        order = (self.triggers + self.gateways + self.invokers + self.schedulers +
                 ["kafka", "redis2", "redis1", "etcd3", "etcd2", "etcd1"])
        for name in order + [n for n in self.procs if n not in order]:
            p = self.procs.get(name)
            if p:
                p.stop(timeout=5)
        cleanup()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self, n=25):
        for name, p in self.procs.items():
            sys.stderr.write("---- %s on %s (last lines) ----\n%s\n" % (name, p.host, p.tail(n)))

    def _spawn(self, name, host, argv, env=None):
        h = self.hosts[host]
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("GUST_") or k.lower().endswith("_proxy"):
                del e[k]
        e.update(env or {})
        # nsenter, not "ip netns exec": that one remounts /sys in a new mount
        # namespace, which hides the cgroup hierarchies the invoker needs.
        p = Proc(name, ["nsenter", "--net=/run/netns/" + h.ns, "--"] + argv, self.dir, e)
        p.host = host
        self.procs[name] = p.start()
        return p

    def gust_env(self):
        # The stores here are still plain (http etcd, a replicated Redis without
        # ACL users), so the daemons need the explicit insecure key; the
        # single-host harness (tests/lib/cluster.py) runs them with credentials.
        return {"GUST_ETCD": self.etcd_endpoints, "GUST_REDIS": self.redis_addr,
                "GUST_LOG_LEVEL": self.log_level, "GUST_INSECURE_STORES": "true"}

    # --- the stores ------------------------------------------------------
    def start_etcd(self, i):
        h = self.hosts["store%d" % i]
        peers = ",".join("etcd%d=http://%s:%d" % (k, self.hosts["store%d" % k].ip, ETCD_PEER)
                         for k in (1, 2, 3))
        client = "http://%s:%d" % (h.ip, ETCD_CLIENT)
        peer = "http://%s:%d" % (h.ip, ETCD_PEER)
        self._spawn("etcd%d" % i, h.name, [
            "etcd", "--name", "etcd%d" % i, "--data-dir", os.path.join(self.dir, "etcd%d" % i),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", peers, "--initial-cluster-state", "new",
            "--initial-cluster-token", "gustc", "--max-request-bytes", "33554432",
            "--logger", "zap", "--log-level", "warn"])

    def wait_etcd(self, timeout=30):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                st, body, _ = http("GET", "http://%s:%d/health" % (self.hosts["store1"].ip,
                                                                   ETCD_CLIENT), timeout=2)
                if st == 200 and isinstance(body, dict) and body.get("health") == "true":
                    return
                last = body
            except OSError as e:
                last = e
            time.sleep(0.2)
        raise RuntimeError("etcd cluster not healthy: %s" % (last,))

    def _redis(self, name, host, extra):
        h = self.hosts[host]
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        self._spawn(name, host, ["redis-server", "--bind", h.ip, "--port", str(REDIS_PORT),
                                 "--protected-mode", "no", "--dir", d, "--save", "",
                                 "--appendonly", "yes", "--appendfsync", "everysec"] + extra)
        self.wait_tcp(h.ip, REDIS_PORT)

    def start_redis_master(self):
        self._redis("redis1", "store1", [])

    def start_redis_replica(self):
        self._redis("redis2", "store2", ["--replicaof", self.hosts["store1"].ip, str(REDIS_PORT)])

    def start_kafka(self):
        """The Kafka-protocol broker on store3, relayed to the trigger hosts.
        gust-kafka-mock listens on store3's loopback only and advertises
        127.0.0.1:<port>, so a relay on store3 (10.214.0.13:<port> -> its
        loopback) and one on each trigger host (its 127.0.0.1:<port> ->
        10.214.0.13:<port>) make that same address work on every such host."""
        bf = os.path.join(self.dir, "kafka.bootstrap")
        argv = [self.bin("gust-kafka-mock"), "--brokers", "1", "--bootstrap-file", bf]
        for t in self.kafka_topics:
            argv += ["--topic", t]
        self._spawn("kafka", "store3", argv)
        end = time.time() + 10
        while time.time() < end and not os.path.exists(bf):
            time.sleep(0.05)
        if not os.path.exists(bf):
            raise RuntimeError("gust-kafka-mock wrote no bootstrap file:\n" +
                               self.procs["kafka"].tail())
        time.sleep(0.05)  # written whole, but let the writer finish
        with open(bf) as f:
            self.kafka_bootstrap = f.read().strip().replace("BOOTSTRAP=", "")
        broker_ip = self.hosts["store3"].ip
        for hp in self.kafka_bootstrap.split(","):
            port = int(hp.rpartition(":")[2])
            self._relay("krelay-store3-%d" % port, "store3", "%s:%d" % (broker_ip, port),
                        "127.0.0.1:%d" % port)
            self.wait_tcp(broker_ip, port)
            for i in range(1, len(self.triggers) + 1):
                self._relay("krelay-ctl%d-%d" % (i, port), "ctl%d" % i, "127.0.0.1:%d" % port,
                            "%s:%d" % (broker_ip, port))

    def _relay(self, name, host, listen, target):
        p = self._spawn(name, host, [sys.executable, "-u", os.path.join(HERE, "tcprelay.py"),
                                     listen, target])
        end = time.time() + 10
        while time.time() < end:
            if "listening" in p.tail(5):
                return p
            if not p.alive():
                break
            time.sleep(0.05)
        raise RuntimeError("relay %s on %s did not start:\n%s" % (name, host, p.tail()))

    def in_host(self, host, argv, **kw):
        """subprocess.Popen of argv inside a host's network namespace (the caller
        stops it; stop() kills whatever is left in the namespaces)."""
        return subprocess.Popen(["nsenter", "--net=/run/netns/" + self.hosts[host].ns, "--"] + argv,
                                start_new_session=True, **kw)

    # --- Gust's daemons --------------------------------------------------
    def tls_args(self, role, name, ip):
        """A daemon's certificate flags (issued on first start, kept across restarts)."""
        base = os.path.join(self.pki, "%s-%s" % (role, name))
        if not os.path.exists(base + ".crt"):
            sh(os.path.join(SOURCE, "deploy", "gust-pki"), self.pki, "issue", role, name,
               "IP:" + ip)
        return ["--transport_cert", base + ".crt", "--transport_key", base + ".key",
                "--transport_ca_dir", self.pki]

    def start_scheduler(self, name):
        host = "ctl" + name[len("scheduler"):]
        ip = self.hosts[host].ip
        self._spawn(name, host, [
            self.bin("gust-scheduler"), "--id", name,
            "--listen", "tls+tcp://%s:0" % ip, "--status_listen", "tls+tcp://%s:0" % ip,
            "--metrics_host", ip, "--metrics_port", str(SCHED_METRICS)] +
            self.tls_args("scheduler", name, ip) + self.scheduler_args, self.gust_env())

    def start_invoker(self, name):
        host = "work" + name[len("invoker"):]
        if host not in self.hosts:  # grown after start (scale-out)
            self._host(host, "%s.%d" % (SUBNET, 30 + int(name[len("invoker"):])))
            h = self.hosts[host]
            sh("ip", "netns", "add", h.ns)
            sh("ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
            sh("ip", "link", "set", h.veth, "master", BRIDGE, "up")
            sh("ip", "-n", h.ns, "addr", "add", h.ip + "/24", "dev", "eth0")
            sh("ip", "-n", h.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", h.ns, "link", "set", "lo", "up")
        if name not in self.invokers:
            self.invokers.append(name)
        ip = self.hosts[host].ip
        self._spawn(name, host, [
            self.bin("gust-invoker"), "--id", name, "--listen", "tls+tcp://%s:0" % ip,
            "--metrics_host", ip, "--metrics_port", str(INV_METRICS),
            "--state_dir", os.path.join(self.dir, name),
            "--runtime_dir", os.path.join(SOURCE, "invoker", "runtimes"),
            "--memory_mb", str(self.memory_mb)] + self.tls_args("invoker", name, ip) +
            self.invoker_args, self.gust_env())

    def start_gateway(self, name):
        host = "ctl" + name[len("gateway"):]
        self._spawn(name, host, [self.bin("gust-gateway"), "--id", name,
                                 "--host", self.hosts[host].ip, "--port", str(GW_PORT)] +
                    self.tls_args("gateway", name, self.hosts[host].ip), self.gust_env())

    def start_trigger(self, name):
        host = "ctl" + name[len("trigger"):]
        ip = self.hosts[host].ip
        self._spawn(name, host, [self.bin("gust-trigger"), "--id", name,
                                 "--metrics_host", ip, "--metrics_port", str(TRIG_METRICS),
                                 "--api_host", self.gw_url("gateway1")] +
                    self.tls_args("trigger", name, ip), self.gust_env())

    def restart(self, name):
        """Starts a stopped process again, the way it was started."""
        kind = name.rstrip("0123456789")
        if kind == "etcd":
            self.start_etcd(int(name[4:]))
        elif name == "redis1":
            self.start_redis_master()
        elif name == "redis2":
            self.start_redis_replica()
        else:
            getattr(self, "start_" + kind)(name)

    # --- readiness and state ---------------------------------------------
    @staticmethod
    def wait_tcp(ip, port, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            try:
                socket.create_connection((ip, port), 0.3).close()
                return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nothing listens on %s:%d" % (ip, port))

    def health(self, url):
        try:
            st, body, _ = http("GET", url + "/health", timeout=2)
            return body if st == 200 and isinstance(body, dict) else {}
        except OSError:
            return {}

    def leader(self):
        for name in self.schedulers:
            p = self.procs.get(name)
            if p and p.alive() and self.health(self.sched_url(name)).get("leader"):
                return name
        return None

    def wait_ready(self, timeout=45, invokers=None):
        """Until every gateway serves and the leading scheduler knows every invoker."""
        want = len(self.invokers) if invokers is None else invokers
        end = time.time() + timeout
        last = ""
        while time.time() < end:
            for name, p in self.procs.items():
                if not p.alive():
                    raise RuntimeError("%s on %s exited:\n%s" % (name, p.host, p.tail()))
            gws = [bool(self.health(self.gw_url(g))) or
                   self._status(self.gw_url(g) + "/health") == 200 for g in self.gateways]
            lead = self.leader()
            n = self.health(self.sched_url(lead)).get("invokers", 0) if lead else 0
            if all(gws) and lead and n >= want:
                return
            last = "gateways %s, leader %s knows %s invokers" % (gws, lead, n)
            time.sleep(0.2)
        raise RuntimeError("cluster not ready: " + last)

    @staticmethod
    def _status(url):
        try:
            return http("GET", url, timeout=2)[0]
        except OSError:
            return None

    def metric(self, url, name):
        """Sum of a metric's samples on a daemon's /metrics (None if it does not answer)."""
        try:
            with _opener.open(url + "/metrics", timeout=3) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            head, _, val = line.rpartition(" ")
            if head.split("{", 1)[0] == name:
                total += float(val)
        return total

    # --- etcd and admin --------------------------------------------------
    def etcd(self, path, body):
        last = None
        for ep in self.etcd_endpoints.split(","):
            try:
                req = urllib.request.Request(ep + path, data=json.dumps(body).encode(),
                                             method="POST")
                with _opener.open(req, timeout=5) as r:
                    return json.loads(r.read())
            except OSError as e:
                last = e
        raise last

    def etcd_get(self, key):
        """The value of a key as a string, or None."""
        b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        r = self.etcd("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def redis(self, *args):
        """One command to the Redis master over RESP (stdlib only)."""
        s = socket.create_connection((self.hosts["store1"].ip, REDIS_PORT), 5)
        try:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _resp_read(s.makefile("rb"))
        finally:
            s.close()

    def etcd_put(self, key, value):
        b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        self.etcd("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def create_namespace(self, ns, limits=None):
        if limits is None:
            limits = {"concurrentInvocations": 100000, "invocationsPerMinute": 10000000,
                      "firesPerMinute": 10000000}
        self.etcd_put("/gust/namespaces/" + ns, json.dumps(
            {"name": ns, "created": int(time.time() * 1000), "limits": limits}))

    def grant(self, ns, *targets):
        """Adds targets to ns's grants for feeds and bindings outside the
        cluster (/gust/grants/<ns>, gust/scope.h)."""
        key = "/gust/grants/" + ns
        cur = json.loads(self.etcd_get(key) or "{}")
        have = cur.setdefault("targets", [])
        have.extend(t for t in targets if t not in have)
        self.etcd_put(key, json.dumps(cur))

    def grant_kafka(self, ns):
        """Grants ns every broker of the Kafka mock, each host:port exactly."""
        self.grant(ns, *[b.strip() for b in (self.kafka_bootstrap or "").split(",") if b.strip()])

    def create_key(self, ns):
        u = str(uuid.uuid4())
        k = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))
        salt = secrets.token_hex(16)
        digest = hashlib.sha256((salt + k).encode()).hexdigest()
        self.etcd_put("/gust/keys/" + u, json.dumps({"uuid": u, "namespace": ns, "salt": salt,
                                                     "hash": digest}))
        return "%s:%s" % (u, k)


if __name__ == "__main__":
    if "--cleanup" in sys.argv:
        cleanup(verbose=True)
    elif "--up" in sys.argv:
        c = NetCluster("up", keep=True)
        with c:
            print("cluster up in %s; gateways %s; etcd %s; Ctrl-C tears it down" % (
                c.dir, [c.gw_url(g) for g in c.gateways], c.etcd_endpoints))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    else:
        print("usage: netcluster.py --cleanup | --up")
        sys.exit(2)
