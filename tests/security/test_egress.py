"""Egress is a policy, not an annotation (issue 14 point 3).

alice has the egress grant (`gust admin grant egress alice on`), bob never
has it, carol has it and loses it. Every probe runs inside a real egress
sandbox of the cluster; what it tries to reach is on this machine or in a
network namespace the test makes ("far", behind a veth pair):

  far: 203.0.113.20  "another node": etcd's membership advertises it
       203.0.113.21  a public-range test server (reachable), named
                     far.gust-test by the test's DNS server
       203.0.113.22  the same kind of server, denied by the operator by name
                     (denied.gust-test)
       169.254.169.254  a metadata address (routed there only for traffic
                     from the invoker's bridge: ip rule iif; the host's own
                     metadata route is untouched)
       10.217.R.2    a private address, reachable only once allowed
  host: a TCP listener on every address (the node's own), fe80::beef on the
        invoker's bridge (an IPv6 link-local neighbour), the DNS server on
        127.0.0.1 (the invoker's egress_resolver: reached by DNAT).

Attacks, each asserted to FAIL, with the control beside it that shows the
same target WOULD be reachable without the rule:
- create or update an action annotated egress in bob's ungranted namespace:
  403 naming the annotation. Legit: alice creates one; bob one without it.
- another node's etcd/Redis/nng ports (203.0.113.20): closed; the same ports
  on 203.0.113.21 in the same namespace are open.
- 169.254.169.254:80: closed; an explicit allow (the control) opens it,
  removing the allow closes it again.
- the node's own addresses (bridge, veth, loopback etcd/Redis): closed; the
  host reaches its listener there.
- the IPv6 link-local neighbour: closed, and the sandbox has no IPv6 address
  at all; the host reaches it.
- an operator-denied name: closed by name and address; removing the entry
  opens it (the invoker follows etcd).
- a private address: closed by default; an explicit allow opens it.
- carol's grant taken back: her next run is refused and her warm sandbox
  loses the network; granted again, it works.
Legit: alice reaches the public test server by address and by name (DNS).

Everything the test makes (network namespace, veth, routes, address on the
bridge, servers) is removed in `finally`, also when a check fails; the
invoker removes its bridge and nft table when it stops (checked)."""
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from cluster import Cluster, Proc, free_port, wait_tcp, wait_until
from gtest import case, check, finish

R = random.randint(1, 250)
FAR = "gustfar%d-%d" % (os.getpid() % 100000, R)
HOST_IF, FAR_IF = "gtf%d" % R, "gtg%d" % R
HOST_IP = "203.0.113.1"
NODE2, PUBLIC, DENIED = "203.0.113.20", "203.0.113.21", "203.0.113.22"
META = "169.254.169.254"
PRIV = "10.217.%d.2" % R
TABLE = str(30000 + R)  # the route to META, for the bridge's traffic only
LL6 = "fe80::beef"

SERVER = r"""
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(("ok %s:%d\n" % (c.getsockname()[0], port)).encode())
        finally:
            c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait()
"""

PROBE = r"""
import socket, threading
def one(host, port, out):
    key = "%s:%d" % (host, port)
    try:
        if ":" in host:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect((host, port, 0, socket.if_nametoindex("eth0")))
        else:
            s = socket.create_connection((host, port), timeout=2)
        out[key] = "open:" + s.recv(64).decode(errors="replace").strip()
        s.close()
    except Exception as e:
        out[key] = "closed:%s %s" % (type(e).__name__, e)
def main(a):
    out = {}
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect(("PUBLIC_ADDR", 9))
        out["ip"] = u.getsockname()[0]
    except Exception:
        out["ip"] = ""
    ts = [threading.Thread(target=one, args=(h, p, out)) for h, p in a.get("targets", [])]
    for t in ts: t.start()
    for t in ts: t.join()
    try:
        out["v6"] = open("/proc/net/if_inet6").read()
    except Exception as e:
        out["v6"] = None
    return out
""".replace("PUBLIC_ADDR", PUBLIC)


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True)


# --- the test's DNS server (UDP, A records only) on the host's loopback ----
NAMES = {"far.gust-test": PUBLIC, "denied.gust-test": DENIED}


def dns_answer(q):
    if len(q) < 12:
        return None
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        n = q[i]
        labels.append(q[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    qend = i + 5
    if qend > len(q):
        return None
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    name = ".".join(labels).lower()
    addr = NAMES.get(name)
    flags = 0x8180 if addr else 0x8183
    an = qtype == 1 and addr is not None
    head = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if an else 0, 0, 0)
    body = q[12:qend]
    if an:
        body += struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(addr)
    return head + body


def dns_serve(sock):
    while True:
        try:
            q, peer = sock.recvfrom(512)
        except OSError:
            return
        a = dns_answer(q)
        if a:
            sock.sendto(a, peer)


# --- listeners of the host itself (the node's own addresses) ---------------
def host_serve(sock):
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        try:
            c.sendall(b"ok host\n")
        finally:
            c.close()


def tcp_reach(host, port, scope=None):
    try:
        if ":" in host:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect((host, port, 0, socket.if_nametoindex(scope)))
        else:
            s = socket.create_connection((host, port), timeout=2)
        ok = s.recv(16).startswith(b"ok")
        s.close()
        return ok
    except OSError:
        return False


class EgressCluster(Cluster):
    """etcd also advertises a client URL on "another node" (203.0.113.20,
    in the far namespace): the invokers learn it from etcd's membership."""

    def start_etcd(self):
        scheme = self.etcd_url.split("://")[0]
        self.etcd_advertise_extra = ["%s://%s:%d" % (scheme, NODE2, self.etcd_port)]
        super().start_etcd()


server = None
c = None
socks = []
tmp = tempfile.mkdtemp(prefix="gust-egress-sec-")
bridge = None
try:
    # The far namespace and its servers.
    assert sh("ip", "netns", "add", FAR).returncode == 0
    assert sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", FAR_IF,
              "netns", FAR).returncode == 0
    sh("ip", "addr", "add", HOST_IP + "/24", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    for a in (NODE2, PUBLIC, DENIED):
        sh("ip", "-n", FAR, "addr", "add", a + "/24", "dev", FAR_IF)
    for a in (META, PRIV):
        sh("ip", "-n", FAR, "addr", "add", a + "/32", "dev", "lo")
    assert sh("ip", "route", "add", PRIV + "/32", "via", NODE2, "dev", HOST_IF).returncode == 0
    assert sh("ip", "route", "add", META + "/32", "via", NODE2, "dev", HOST_IF,
              "table", TABLE).returncode == 0
    sh("ip", "-n", FAR, "link", "set", FAR_IF, "up")
    sh("ip", "-n", FAR, "link", "set", "lo", "up")

    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 0))
    socks.append(dns)
    threading.Thread(target=dns_serve, args=(dns,), daemon=True).start()
    host4 = socket.socket()
    host4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    host4.bind(("0.0.0.0", 0))
    host4.listen(16)
    socks.append(host4)
    HP = host4.getsockname()[1]
    threading.Thread(target=host_serve, args=(host4,), daemon=True).start()
    host6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    host6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    host6.bind(("::", 0))
    host6.listen(16)
    socks.append(host6)
    HP6 = host6.getsockname()[1]
    threading.Thread(target=host_serve, args=(host6,), daemon=True).start()

    cl = EgressCluster("egress-sec", invoker_args=[
        "--egress_resolver", "127.0.0.1:%d" % dns.getsockname()[1],
        "--egress_refresh_s", "1"])
    cl.__enter__()
    c = cl
    # The far servers listen on every port a node has here: etcd, Redis,
    # the invoker's nng listener, plus 80 and 8000.
    inv_port = int(re.search(r":(\d+)$", json.loads(
        c.etcd_get("/gust/invokers/invoker0"))["address"]).group(1))
    PORTS = [80, 8000, c.etcd_port, c.redis_port, inv_port]
    with open(os.path.join(tmp, "server.py"), "w") as f:
        f.write(SERVER)
    server = subprocess.Popen(["ip", "netns", "exec", FAR, "python3",
                               os.path.join(tmp, "server.py")] + [str(p) for p in PORTS],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    assert wait_until(lambda: tcp_reach(PUBLIC, 8000), timeout=10), "far server"

    keys = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    env = dict(os.environ, GUST_ETCD=c.etcd_url)

    def admin(*args):
        p = subprocess.run([c.bin("gust"), "admin"] + list(args), capture_output=True,
                           text=True, env=env, timeout=30)
        check("gust admin " + " ".join(args), p.returncode == 0, (p.stdout, p.stderr))
        return p

    admin("grant", "egress", "alice", "on")
    admin("grant", "egress", "carol", "on")
    p = admin("grant", "show", "alice")
    check("gust admin grant show says alice has egress", "egress on" in p.stdout, p.stdout)
    p = admin("grant", "show", "bob")
    check("and that bob has not", "egress off" in p.stdout, p.stdout)
    admin("policy", "egress", "deny", "denied.gust-test")

    def put(ns, name, egress=True):
        ann = [{"key": "egress", "value": True}] if egress else []
        return c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name,
                     {"exec": {"kind": "python:3", "code": PROBE}, "annotations": ann},
                     keys[ns])

    def probe(ns, name, targets):
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true"
                         % name, {"targets": targets}, keys[ns])
        return st, b

    def tag_hash():
        with open(c.procs["invoker0"].log) as f:
            return re.findall(r"INV-SANDBOX-CFG tag \S+-([0-9a-f]{8}),", f.read())[-1]

    def is_open(res, host, port):
        return isinstance(res, dict) and str(res.get("%s:%d" % (host, port), "")).startswith("open:ok")

    @case
    def ungranted_namespace_cannot_have_egress():
        st, b, _ = put("bob", "probe")
        check("bob (no grant): an egress action is refused with 403",
              st == 403 and isinstance(b, dict) and "'egress'" in b.get("error", "") and
              b.get("code") is not None, (st, b))
        st, b, _ = put("bob", "plain", egress=False)
        check("bob: an action without egress is created", st == 200, (st, b))
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/plain?overwrite=true",
                         {"annotations": [{"key": "egress", "value": True}]}, keys["bob"])
        check("bob: adding egress to it by update is refused with 403", st == 403, (st, b))
        st, b, _ = put("alice", "probe")
        check("alice (granted): an egress action is created", st == 200, (st, b))
        p = subprocess.run([c.bin("gust"), "admin", "policy", "egress", "allow", "not a name!"],
                           capture_output=True, text=True, env=env, timeout=30)
        check("gust admin refuses a malformed entry", p.returncode != 0, p.stderr)

    # The invoker follows the grants by a watch: the first run may race it.
    assert wait_until(lambda: is_open(probe("alice", "probe", [[PUBLIC, 8000]])[1], PUBLIC, 8000),
                      timeout=20), "alice's first egress run"
    bridge = "gb" + tag_hash()
    rule = ["iif", bridge, "to", META, "lookup", TABLE, "pref", TABLE]
    assert sh("ip", "rule", "add", *rule).returncode == 0

    @case
    def public_address_reachable_by_address_and_name():
        st, b = probe("alice", "probe", [[PUBLIC, 8000], ["far.gust-test", 8000]])
        check("alice reaches the public test server by address", is_open(b, PUBLIC, 8000), (st, b))
        check("and by name, through the node's resolver (on loopback: DNAT)",
              is_open(b, "far.gust-test", 8000), (st, b))

    @case
    def another_nodes_ports_are_closed():
        ports = [c.etcd_port, c.redis_port, inv_port]
        st, b = probe("alice", "probe", [[h, p] for h in (NODE2, PUBLIC) for p in ports])
        for p in ports:
            check("another node's port %d (etcd member address) is closed" % p,
                  isinstance(b, dict) and not is_open(b, NODE2, p) and
                  "%s:%d" % (NODE2, p) in b, (st, b))
            check("control: the same port on a public address of that namespace is open",
                  is_open(b, PUBLIC, p), (st, b))

    @case
    def metadata_address_is_closed():
        st, b = probe("alice", "probe", [[META, 80]])
        check("%s:80 is closed to an egress sandbox" % META, isinstance(b, dict) and
              "%s:80" % META in b and not is_open(b, META, 80), (st, b))
        admin("policy", "egress", "allow", META)
        check("control: with an explicit allow it is reached (the route is there)",
              wait_until(lambda: is_open(probe("alice", "probe", [[META, 80]])[1], META, 80),
                         timeout=20))
        admin("policy", "egress", "remove", META)
        check("the allow removed, it is closed again",
              wait_until(lambda: not is_open(probe("alice", "probe", [[META, 80]])[1], META, 80),
                         timeout=20))

    @case
    def node_own_addresses_are_closed():
        # The sandbox's gateway: its bridge's address.
        out = sh("ip", "-o", "-4", "addr", "show", "dev", bridge).stdout
        m = re.search(r"inet (10\.213\.\d+\.1)/", out)
        gw = m.group(1) if m else None
        check("the invoker's bridge has an address", gw is not None, out)
        check("control: the host reaches its own listener on %s" % HOST_IP, tcp_reach(HOST_IP, HP))
        targets = [[HOST_IP, HP], [gw, HP], ["127.0.0.1", c.etcd_port],
                   ["127.0.0.1", c.redis_port]]
        st, b = probe("alice", "probe", targets)
        for h, p in targets:
            check("the node's own %s:%d is closed" % (h, p),
                  isinstance(b, dict) and "%s:%d" % (h, p) in b and not is_open(b, h, p), (st, b))

    @case
    def ipv6_link_local_neighbour_is_closed():
        check("the bridge is there", bridge is not None)
        r = sh("ip", "-6", "addr", "add", LL6 + "/64", "dev", bridge, "nodad")
        check("fe80::beef on the bridge", r.returncode == 0, r.stderr)
        check("control: the host reaches [%s%%%s]:%d" % (LL6, bridge, HP6),
              wait_until(lambda: tcp_reach(LL6, HP6, bridge), timeout=5))
        st, b = probe("alice", "probe", [[LL6, HP6]])
        check("an egress sandbox does not", isinstance(b, dict) and "%s:%d" % (LL6, HP6) in b and
              not is_open(b, LL6, HP6), (st, b))
        check("its eth0 has no IPv6 address at all (not even link-local)",
              isinstance(b, dict) and isinstance(b.get("v6"), str) and "eth0" not in b["v6"],
              (st, b))

    @case
    def operator_denied_name_then_removed():
        st, b = probe("alice", "probe", [[DENIED, 8000], ["denied.gust-test", 8000]])
        check("an address the operator denied by name is closed", isinstance(b, dict) and
              "%s:8000" % DENIED in b and not is_open(b, DENIED, 8000), (st, b))
        check("and so is the name", isinstance(b, dict) and
              "denied.gust-test:8000" in b and not is_open(b, "denied.gust-test", 8000), (st, b))
        admin("policy", "egress", "remove", "denied.gust-test")
        check("with the entry removed the invoker opens it (it follows etcd)",
              wait_until(lambda: is_open(probe("alice", "probe", [[DENIED, 8000]])[1],
                                         DENIED, 8000), timeout=20))
        admin("policy", "egress", "deny", "denied.gust-test")
        check("and denied again, closes it",
              wait_until(lambda: not is_open(probe("alice", "probe", [[DENIED, 8000]])[1],
                                             DENIED, 8000), timeout=20))

    @case
    def private_address_needs_an_explicit_allow():
        check("control: the host reaches %s:8000" % PRIV, tcp_reach(PRIV, 8000))
        st, b = probe("alice", "probe", [[PRIV, 8000]])
        check("a private address is closed by default", isinstance(b, dict) and
              "%s:8000" % PRIV in b and not is_open(b, PRIV, 8000), (st, b))
        admin("policy", "egress", "allow", PRIV)
        check("an explicit allow opens it",
              wait_until(lambda: is_open(probe("alice", "probe", [[PRIV, 8000]])[1], PRIV, 8000),
                         timeout=20))
        p = admin("policy", "egress", "show")
        check("gust admin policy egress show lists it", "allow " + PRIV in p.stdout, p.stdout)
        admin("policy", "egress", "remove", PRIV)

    @case
    def grant_taken_back():
        st, b, _ = put("carol", "probe")
        check("carol (granted) creates an egress action", st == 200, (st, b))
        check("and it reaches the public server",
              wait_until(lambda: is_open(probe("carol", "probe", [[PUBLIC, 8000]])[1],
                                         PUBLIC, 8000), timeout=20))
        carol_ip = probe("carol", "probe", [])[1].get("ip")
        alice_ip = probe("alice", "probe", [])[1].get("ip")

        def granted_set():
            return sh("nft", "list", "set", "inet", "gust_" + tag_hash(), "granted").stdout
        check("her sandbox's address is in @granted", carol_ip and
              re.search(re.escape(carol_ip) + r"\b", granted_set()), (carol_ip, granted_set()))
        admin("grant", "egress", "carol", "off")

        def refused():
            st, b = probe("carol", "probe", [[PUBLIC, 8000]])
            return ("egress is not granted" in json.dumps(b)) and (st, b)
        r = wait_until(refused, timeout=20)
        check("with the grant taken back her run is refused (never run with egress)",
              bool(r), r)
        nft = granted_set()
        check("and her warm sandbox's address left @granted (it is cut off), alice's stays",
              not re.search(re.escape(carol_ip) + r"\b", nft) and
              re.search(re.escape(alice_ip) + r"\b", nft), (carol_ip, alice_ip, nft))
        st, b, _ = put("carol", "probe2")
        check("she cannot create another one", st == 403, (st, b))
        admin("grant", "egress", "carol", "on")
        check("granted again, it works again",
              wait_until(lambda: is_open(probe("carol", "probe", [[PUBLIC, 8000]])[1],
                                         PUBLIC, 8000), timeout=20))

    @case
    def sandbox_without_egress_has_none():
        st, b, _ = put("alice", "closed", egress=False)
        check("alice: an action without egress", st == 200, (st, b))
        st, b = probe("alice", "closed", [[PUBLIC, 8000]])
        check("reaches nothing", isinstance(b, dict) and "%s:8000" % PUBLIC in b and
              not is_open(b, PUBLIC, 8000), (st, b))

    h = tag_hash()
    c.__exit__(None, None, None)
    c = None

    @case
    def nothing_left():
        links = sh("ip", "-o", "link").stdout
        check("no bridge or veth of the invoker left",
              "gb" + h not in links and "gv" + h[:6] not in links)
        check("no nftables table of the invoker left",
              "gust_" + h not in sh("nft", "list", "tables").stdout)
finally:
    if c is not None:
        c.__exit__(None, None, None)
    if server is not None:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except OSError:
            pass
        server.wait()
    for s in socks:
        s.close()
    if bridge is not None:
        sh("ip", "rule", "del", "iif", bridge, "to", META, "lookup", TABLE, "pref", TABLE)
    sh("ip", "link", "del", HOST_IF)  # its routes (also in TABLE) go with it
    sh("ip", "netns", "del", FAR)
    subprocess.run(["rm", "-rf", tmp])
finish()
