"""The sandbox allows what functions need, nothing more (issue 13, point 7).

From inside functions of three namespaces (alice, bob, carol), through the
real gateway, scheduler and invoker: socket families other than unix, inet,
inet6 and netlink-route (vsock, packet, alg, key, netlink audit/uevent) and
rare or dangerous system calls (kexec, keyrings, io_uring, bpf, odd
personalities, i386 and x32 calls, calls newer than the filter) are refused,
while what functions do every day still works in the same sandbox (TCP on
its loopback, getaddrinfo, threads, subprocesses, python's and node's usual
modules). And an idle warm sandbox is frozen: a thread the function left
running stops advancing while the sandbox is idle (seen from the host
through the sandbox's cgroup), and the next activation thaws it."""
import hashlib
import os
import threading
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

NAMESPACES = ("alice", "bob", "carol")
SHA = hashlib.sha256(b"gust").hexdigest()[:8]

# Every attempt answers "ok:<what>" when it worked and "denied:<ERRNO>" when not.
PROBE = r'''
import ctypes, errno, mmap, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def attempt(fn):
    try:
        return "ok:%s" % (fn(),)
    except OSError as e:
        return "denied:%s" % errno.errorcode.get(e.errno, e.errno)
def sock(family, kind, proto=0):
    s = socket.socket(family, kind, proto)
    s.close()
    return family
def pair(family):
    a, b = socket.socketpair(family, socket.SOCK_STREAM)
    a.close(); b.close()
    return family
def sys(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
def machine(code):
    # Runs raw machine code (the i386 and x32 entry points cannot be reached
    # from python otherwise); returns its eax, a negative errno when refused.
    buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    r = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    return r
def in_child(fn):
    # A kernel without the i386 ABI kills the caller of int 0x80 (SIGSEGV):
    # refused as well, but not in the probe's own process.
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        os.write(wr, attempt(fn).encode())
        os._exit(0)
    os.close(wr)
    out = os.read(rd, 200).decode()
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise OSError(errno.ENOSYS, "killed by signal %d" % os.WTERMSIG(status))
    if out.startswith("denied:"):
        raise OSError(getattr(errno, out[7:], errno.EIO), out)
    return out[3:]
def main(args):
    r = {}
    r['vsock'] = attempt(lambda: sock(40, socket.SOCK_STREAM))
    r['vsock_dgram'] = attempt(lambda: sock(40, socket.SOCK_DGRAM))
    r['packet'] = attempt(lambda: sock(17, socket.SOCK_RAW, 0x0300))
    r['packet_dgram'] = attempt(lambda: sock(17, socket.SOCK_DGRAM))
    r['alg'] = attempt(lambda: sock(38, socket.SOCK_SEQPACKET))
    r['key'] = attempt(lambda: sock(15, socket.SOCK_RAW, 2))
    r['netlink_audit'] = attempt(lambda: sock(16, socket.SOCK_RAW, 9))
    r['netlink_uevent'] = attempt(lambda: sock(16, socket.SOCK_DGRAM, 15))
    r['netlink_netfilter'] = attempt(lambda: sock(16, socket.SOCK_RAW, 12))
    r['family_out_of_range'] = attempt(lambda: sock(200, socket.SOCK_STREAM))
    r['socketpair_inet'] = attempt(lambda: pair(socket.AF_INET))
    r['kexec_load'] = attempt(lambda: sys(246, 0, 0, 0, 0))
    r['add_key'] = attempt(lambda: sys(248, 0, 0, 0, 0, 0))
    r['keyctl'] = attempt(lambda: sys(250, 0, 0, 0, 0, 0))
    r['io_uring_setup'] = attempt(lambda: sys(425, 8, 0))
    r['bpf'] = attempt(lambda: sys(321, 0, 0, 0))
    r['userfaultfd'] = attempt(lambda: sys(323, 0))
    r['perf_event_open'] = attempt(lambda: sys(298, 0, 0, -1, -1, 0))
    r['unshare_user'] = attempt(lambda: sys(272, 0x10000000))
    r['clone_newns'] = attempt(lambda: sys(56, 0x00020000 | 17, 0, 0, 0, 0))
    r['personality_rie'] = attempt(lambda: sys(135, 0x0400000))
    r['personality_norandom'] = attempt(lambda: sys(135, 0x0040000))
    r['statmount'] = attempt(lambda: sys(457, 0, 0, 0, 0))
    r['unknown_new_call'] = attempt(lambda: sys(1000, 0))
    # mov eax, 20 (i386 getpid); int 0x80; ret
    r['i386_getpid'] = attempt(lambda: in_child(lambda: machine(b'\xb8\x14\x00\x00\x00\xcd\x80\xc3')))
    # mov eax, 0x40000027 (x32 getpid); syscall; ret
    r['x32_getpid'] = attempt(lambda: in_child(lambda: machine(b'\xb8\x27\x00\x00\x40\x0f\x05\xc3')))
    # beside them, in the same sandbox: what must still work
    r['native_getpid'] = attempt(lambda: sys(39))
    r['personality_query'] = attempt(lambda: sys(135, 0xffffffff))
    r['unix'] = attempt(lambda: sock(socket.AF_UNIX, socket.SOCK_STREAM))
    r['inet6'] = attempt(lambda: sock(socket.AF_INET6, socket.SOCK_DGRAM))
    r['netlink_route'] = attempt(lambda: sock(16, socket.SOCK_RAW, 0))
    r['socketpair_unix'] = attempt(lambda: pair(socket.AF_UNIX))
    r['if_nameindex'] = attempt(lambda: [n for _, n in socket.if_nameindex()])
    r['getaddrinfo'] = attempt(lambda: sorted({a[4][0] for a in socket.getaddrinfo('localhost', 80)}))
    return r
'''

DENIED = ("vsock", "vsock_dgram", "packet", "packet_dgram", "alg", "key", "netlink_audit",
          "netlink_uevent", "netlink_netfilter", "family_out_of_range", "socketpair_inet",
          "kexec_load", "add_key", "keyctl", "io_uring_setup", "bpf", "userfaultfd",
          "perf_event_open", "unshare_user", "clone_newns", "personality_rie",
          "personality_norandom", "statmount", "unknown_new_call", "i386_getpid", "x32_getpid")
ALLOWED = ("native_getpid", "personality_query", "unix", "inet6", "netlink_route",
           "socketpair_unix", "if_nameindex", "getaddrinfo")

PY_EVERYDAY = r'''
import asyncio, hashlib, json, socket, ssl, subprocess, sys, threading, zlib
def main(args):
    r = {}
    srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
    def serve():
        c, _ = srv.accept(); c.sendall(c.recv(16).upper()); c.close()
    t = threading.Thread(target=serve); t.start()
    cl = socket.create_connection(srv.getsockname(), 2); cl.sendall(b'ping')
    r['tcp'] = cl.recv(16).decode(); cl.close(); t.join(); srv.close()
    r['v6'] = sorted({a[0].name for a in socket.getaddrinfo('localhost', 80)})
    r['sha256'] = hashlib.sha256(b'gust').hexdigest()[:8]
    r['ssl'] = ssl.create_default_context().protocol.name
    async def two():
        await asyncio.sleep(0.01)
        return 2
    r['asyncio'] = asyncio.run(two())
    r['subprocess'] = subprocess.run([sys.executable, '-c', 'print(6*7)'], capture_output=True,
                                     check=True).stdout.decode().strip()
    out = []
    ts = [threading.Thread(target=lambda i=i: out.append(i)) for i in range(8)]
    [t.start() for t in ts]; [t.join() for t in ts]
    r['threads'] = len(out)
    r['zlib'] = len(zlib.compress(json.dumps(r).encode())) > 0
    return r
'''

NODE_EVERYDAY = r'''
const crypto = require('crypto'), fs = require('fs'), cp = require('child_process');
const net = require('net'), dns = require('dns'), os = require('os');
const { Worker } = require('worker_threads');
async function main(args) {
  const r = {};
  r.sha256 = crypto.createHash('sha256').update('gust').digest('hex').slice(0, 8);
  r.random = crypto.randomBytes(8).length;
  fs.writeFileSync('/tmp/n.txt', 'node'); r.fs = fs.readFileSync('/tmp/n.txt', 'utf8');
  r.child = cp.execFileSync(process.execPath, ['-e', 'console.log(6*7)']).toString().trim();
  r.ifaces = Object.keys(os.networkInterfaces()).sort();
  r.lookup = await new Promise((ok, ko) => dns.lookup('localhost', (e, a) => e ? ko(e) : ok(a)));
  r.tcp = await new Promise((ok, ko) => {
    const srv = net.createServer(s => s.on('data', d => s.end(d.toString().toUpperCase())));
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1', () => c.write('ping'));
      c.on('data', d => { srv.close(); ok(d.toString()); });
      c.on('error', ko);
    });
  });
  r.worker = await new Promise((ok, ko) => {
    const w = new Worker('require("worker_threads").parentPort.postMessage(7)', { eval: true });
    w.on('message', ok); w.on('error', ko);
  });
  return r;
}
exports.main = main;
'''

# A function that leaves a thread behind: it bumps a counter file in /tmp
# every 10 ms, with or without an activation in flight.
TICKER = r'''
import os, threading, time
PATH = None
def tick():
    n = 0
    while True:
        n += 1
        with open(PATH + '.new', 'w') as f:
            f.write(str(n))
        os.rename(PATH + '.new', PATH)
        time.sleep(0.01)
def count():
    with open(PATH) as f:
        return int(f.read())
def main(args):
    global PATH
    if PATH is None:
        PATH = '/tmp/ticker-' + args['marker']
        threading.Thread(target=tick, daemon=True).start()
        while not os.path.exists(PATH):
            time.sleep(0.005)
    first = count()
    time.sleep(args.get('run_s', 0.2))
    return {'first': first, 'last': count()}
'''

SLOW_NODE = r'''
const fs = require('fs');
async function main(args) {
  fs.writeFileSync('/tmp/ticker-' + args.marker, String(args.i));
  await new Promise(r => setTimeout(r, args.ms));
  return { done: args.i };
}
exports.main = main;
'''


def freezer_of(pid):
    """The host path of the freezer state file of process pid's cgroup, and
    what it says when frozen: v1 freezer.state FROZEN, v2 cgroup.events
    'frozen 1'."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    for ln in lines:
        _, ctl, path = ln.split(":", 2)
        if "freezer" in ctl.split(","):
            return "/sys/fs/cgroup/freezer%s/freezer.state" % path
    for ln in lines:
        if ln.startswith("0::"):
            for top in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                p = "%s%s/cgroup.events" % (top, ln[3:])
                if os.path.exists(p):
                    return p
    return None


def frozen(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    if path.endswith("freezer.state"):
        return text.strip() == "FROZEN"
    return "frozen 1" in text.splitlines()


def sandbox_with(marker):
    """Host pid of the sandbox process that holds /tmp/ticker-<marker> in its
    private /tmp (seen through /proc/<pid>/root)."""
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.path.exists("/proc/%s/root/tmp/ticker-%s" % (p, marker)):
                    return int(p)
            except OSError:
                pass
    return None


def read_counter(pid, marker):
    try:
        with open("/proc/%d/root/tmp/ticker-%s" % (pid, marker)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


# 512 MB of user memory: two sandboxes of 256 MB, so that a third evicts one
c = Cluster("sec-sandbox", memory_mb=512, invoker_args=["--freeze_idle_ms", "100"]).__enter__()
try:
    keys = {}
    for ns in NAMESPACES:
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    time.sleep(0.3)

    def put(ns, name, code, kind="python:3", **limits):
        body = {"exec": {"kind": kind, "code": code}}
        if limits:
            body["limits"] = limits
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body,
                         keys[ns])
        assert st == 200, (st, b)

    def invoke(ns, name, params=None):
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % name,
                     params or {}, keys[ns])

    @case
    def socket_families_and_rare_calls():
        for ns in NAMESPACES:
            put(ns, "probe", PROBE)
            st, r, _ = invoke(ns, "probe")
            check("%s: probe ran" % ns, st == 200 and isinstance(r, dict), (st, r))
            if st != 200 or not isinstance(r, dict):
                continue
            for k in DENIED:
                check("%s: refused: %s (%s)" % (ns, k, r.get(k)),
                      str(r.get(k)).startswith("denied:"), r.get(k))
            for k in ALLOWED:
                check("%s: works: %s (%s)" % (ns, k, r.get(k)), str(r.get(k)).startswith("ok:"),
                      r.get(k))
            # the errnos say "not here", as from a kernel without them
            check("%s: vsock is EAFNOSUPPORT" % ns, r.get("vsock") == "denied:EAFNOSUPPORT", r)
            check("%s: netlink audit is EPROTONOSUPPORT" % ns,
                  r.get("netlink_audit") == "denied:EPROTONOSUPPORT", r)
            check("%s: kexec is EPERM, a new call ENOSYS" % ns,
                  r.get("kexec_load") == "denied:EPERM" and
                  r.get("unknown_new_call") == "denied:ENOSYS", r)
            check("%s: getaddrinfo('localhost') answers loopback" % ns,
                  "127.0.0.1" in str(r.get("getaddrinfo")), r.get("getaddrinfo"))
            check("%s: if_nameindex sees lo" % ns, "'lo'" in str(r.get("if_nameindex")),
                  r.get("if_nameindex"))

    @case
    def python_everyday():
        put("bob", "everyday", PY_EVERYDAY)
        st, r, _ = invoke("bob", "everyday")
        check("python: tcp on the sandbox's loopback, threads, subprocess, ssl, asyncio",
              st == 200 and r.get("tcp") == "PING" and r.get("threads") == 8 and
              r.get("subprocess") == "42" and r.get("asyncio") == 2 and r.get("zlib") is True and
              r.get("sha256") == SHA and r.get("ssl", "").startswith("PROTOCOL_TLS") and
              "AF_INET" in r.get("v6", []),
              (st, r))

    @case
    def node_everyday():
        put("carol", "everyday", NODE_EVERYDAY, kind="nodejs:20")
        st, r, _ = invoke("carol", "everyday")
        check("node: crypto, fs, child_process, networkInterfaces, dns, tcp, worker",
              st == 200 and r.get("random") == 8 and r.get("fs") == "node" and
              r.get("child") == "42" and "lo" in r.get("ifaces", []) and
              r.get("lookup") in ("127.0.0.1", "::1") and r.get("tcp") == "PING" and
              r.get("worker") == 7 and r.get("sha256") == SHA, (st, r))

    @case
    def idle_sandbox_is_frozen():
        marker = "m%d" % os.getpid()
        put("alice", "ticker", TICKER)
        st, r, _ = invoke("alice", "ticker", {"marker": marker, "run_s": 0.2})
        check("the ticker ran and its thread ticks during the activation",
              st == 200 and r.get("last", 0) > r.get("first", 0), (st, r))
        pid = wait_until(lambda: sandbox_with(marker), timeout=5)
        check("the ticker's sandbox is found from the host", pid is not None)
        if pid is None:
            return
        fpath = freezer_of(pid)
        check("its cgroup has a freezer", fpath is not None and os.path.exists(fpath), fpath)
        check("idle, it is frozen", wait_until(lambda: frozen(fpath), timeout=10) is True,
              open(fpath).read() if fpath else None)
        c1 = read_counter(pid, marker)
        time.sleep(0.5)
        c2 = read_counter(pid, marker)
        check("while frozen, the thread it left behind does not advance (%s, %s)" % (c1, c2),
              c1 is not None and c1 == c2, (c1, c2))
        check("the invoker counts it frozen",
              (c.metric(c.inv_metrics[0], "gust_invoker_sandboxes_frozen") or 0) >= 1)
        st, r, _ = invoke("alice", "ticker", {"marker": marker, "run_s": 0.2})
        check("the next activation thaws it: same sandbox, the thread ticks again",
              st == 200 and r.get("first", -1) >= c2 and r.get("last", 0) > r.get("first", 0),
              (st, r, c2))
        check("the thaw was counted",
              (c.metric(c.inv_metrics[0], "gust_invoker_thaw_seconds_count") or 0) >= 1)
        check("and it is frozen again once idle",
              wait_until(lambda: frozen(fpath), timeout=10) is True)
        # another tenant's activations are not disturbed by alice's frozen sandbox
        put("bob", "echo", "def main(a):\n    return {'v': a.get('v')}\n")
        st, r, _ = invoke("bob", "echo", {"v": 5})
        check("bob is served meanwhile", st == 200 and r == {"v": 5}, (st, r))
        # memory is full (ticker + echo): carol's action evicts the least
        # recently used idle sandbox, alice's frozen ticker, which must die
        # (a frozen v1 task ignores SIGKILL until it is thawed)
        check("the ticker is still frozen before the eviction", frozen(fpath) is True)
        put("carol", "filler", "def main(a):\n    return {'filled': True}\n")
        st, r, _ = invoke("carol", "filler")
        check("carol's action runs in the memory of the evicted sandbox",
              st == 200 and r == {"filled": True}, (st, r))
        check("the frozen sandbox was destroyed (its processes are gone)",
              wait_until(lambda: not os.path.exists("/proc/%d" % pid), timeout=10) is True, pid)
        check("and its cgroup removed", wait_until(lambda: not os.path.exists(fpath), timeout=10)
              is True, fpath)
        st, r, _ = invoke("alice", "ticker", {"marker": marker, "run_s": 0.1})
        check("alice's ticker starts afresh", st == 200 and r.get("last", 0) > r.get("first", 0),
              (st, r))

    @case
    def concurrent_sandbox_not_frozen_while_busy():
        # nodejs with concurrency 2: the sandbox must stay thawed while any
        # activation is in flight, even when the other one ended long ago.
        put("carol", "slow", SLOW_NODE, kind="nodejs:20", concurrency=2, memory=128)
        marker = "n%d" % os.getpid()
        st, r, _ = invoke("carol", "slow", {"ms": 10, "i": 0, "marker": marker})
        check("warm-up", st == 200 and r == {"done": 0}, (st, r))
        results = {}

        def call(i, ms):
            results[i] = invoke("carol", "slow", {"ms": ms, "i": i, "marker": marker})[:2]

        a = threading.Thread(target=call, args=(1, 200))
        b = threading.Thread(target=call, args=(2, 1500))
        b.start()
        time.sleep(0.05)
        a.start()
        # find the sandbox (by the file it wrote) and watch its freezer while b runs
        a.join()
        seen = set()
        path = None
        while b.is_alive():
            if path is None:
                pid = sandbox_with(marker)
                path = freezer_of(pid) if pid is not None else None
            if path is not None:
                seen.add(frozen(path))
            time.sleep(0.02)
        b.join()
        check("both concurrent activations answered",
              results.get(1) == (200, {"done": 1}) and results.get(2) == (200, {"done": 2}),
              results)
        check("the sandbox was watched while one ran", path is not None and len(seen) > 0, seen)
        check("never frozen while an activation was in flight", True not in seen, seen)
        check("frozen once both are over", path is not None and
              wait_until(lambda: frozen(path), timeout=10) is True)
        st, r, _ = invoke("carol", "slow", {"ms": 10, "i": 3, "marker": marker})
        check("and thawed for the next", st == 200 and r == {"done": 3}, (st, r))
finally:
    c.__exit__(None, None, None)
finish()
