"""Fair shares of what tenants share on an invoker (issue 13, point 6; point 7's
"user namespaces mandatory"): the state cache bounds what one command may
allocate, a namespace's bytes in Redis, and the connections one sandbox may
hold; each sandbox owns its user namespace under a host id range of its own,
so per-user kernel counts (inotify here) of one tenant never starve another
or the host; and the invoker does not start without user namespaces unless
its config says so.

Three namespaces: alice (the attacker, default state limits), bob (a
bystander), carol (a small state quota set with `gust admin namespace
limits`). Each attack is asserted to fail and, beside it, the legitimate use
of the same feature to work."""
import ctypes
import fcntl
import json
import os
import struct
import subprocess
import tempfile
import time

from cluster import SOURCE, Cluster
from gtest import case, check, finish

# Raw commands through the state proxy. {"key": k} is the namespace's key k,
# {"fill": n} n bytes of "x": the big values are made in the sandbox.
CMDS = r'''
import os
import gust_state as state
P = os.environ.get("GUST_STATE_PREFIX", "")
def arg(x):
    if isinstance(x, dict) and "fill" in x:
        return "x" * x["fill"]
    if isinstance(x, dict) and "key" in x:
        return P + x["key"]
    return str(x)
def main(a):
    out = []
    for cmd in a["cmds"]:
        try:
            r = state.command(*[arg(x) for x in cmd])
            out.append(["ok", r.decode() if isinstance(r, bytes) else r])
        except Exception as e:
            out.append(["err", str(e)[:400]])
    return {"out": out}
'''

# Opens n connections to the state socket at once and sends PING on each.
CONNS = r'''
import socket, time
def ping(s):
    try:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
    except OSError:
        pass  # refused: the proxy answered and closed; its answer is still to read
    s.settimeout(5)
    got = b""
    try:
        while not got.endswith(b"\r\n"):
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError as e:
        return "oserror: %s" % e
    return got.decode("latin-1").strip()
def main(a):
    socks, out = [], []
    for _ in range(a["n"]):
        s = socket.socket(socket.AF_UNIX)
        s.connect("/run/gust/state.sock")
        socks.append(s)
        out.append(ping(s))
    for s in socks:
        s.close()
    # The proxy counts a connection until it sees it closed: a new one is
    # taken again once it has (bounded wait, the result says how it went).
    again = ""
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX)
        s.connect("/run/gust/state.sock")
        again = ping(s)
        s.close()
        if again == "+PONG":
            break
        time.sleep(0.05)
    return {"out": out, "again": again}
'''

# Opens inotify instances until the kernel refuses, and keeps them in the
# warm sandbox (a global) so that they stay taken for the next checks.
INOTIFY = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
HELD = []
def main(a):
    err = 0
    while len(HELD) < a.get("max", 100000):
        fd = libc.inotify_init1(0o2000000)
        if fd < 0:
            err = ctypes.get_errno()
            break
        HELD.append(fd)
    return {"count": len(HELD), "errno": err}
'''

ONE_INOTIFY = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def main(a):
    fd = libc.inotify_init1(0o2000000)
    e = ctypes.get_errno() if fd < 0 else 0
    if fd >= 0:
        os.close(fd)
    return {"fd": fd, "errno": e}
'''

CONN_LIMIT = 4
MIB = 1 << 20

c = Cluster("resources", memory_mb=4096,
            invoker_args=["--state_conns_per_sandbox", str(CONN_LIMIT),
                          "--state_quota_interval_ms", "200"]).__enter__()
try:
    AUTH = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        AUTH[ns] = c.create_key(ns)
    # carol: a 1 MiB state quota, set as an operator would.
    r = subprocess.run([c.bin("gust"), "admin", "namespace", "limits", "carol", "--state-bytes",
                        str(MIB)], env=c.common_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rec = json.loads(c.etcd_get("/gust/namespaces/carol"))
    assert rec["limits"]["stateBytes"] == MIB, rec

    @case
    def admin_state_limits():
        def admin(*args):
            return subprocess.run([c.bin("gust"), "admin", "namespace", "limits"] + list(args),
                                  env=c.common_env(), capture_output=True, text=True, timeout=30)
        r = admin("carol", "--json")
        shown = json.loads(r.stdout or "{}")
        # unset: left out or null (the invokers' default, which the CLI does not know)
        check("the quota is shown", r.returncode == 0 and shown.get("stateBytes") == MIB and
              shown.get("stateValueBytes") is None, (r.stdout, r.stderr))
        r = admin("carol", "--state-value-bytes", str(64 * MIB))
        check("a value limit over 8 MiB is refused, naming the flag",
              r.returncode != 0 and "state-value-bytes" in r.stderr, (r.returncode, r.stderr))
        r = admin("carol", "--state-bytes", "-5")
        check("a negative quota is refused, naming the flag",
              r.returncode != 0 and "state-bytes" in r.stderr, (r.returncode, r.stderr))
    time.sleep(0.3)

    def put(name, code, ns):
        body = {"exec": {"kind": "python:3", "code": code}, "limits": {"memory": 128}}
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body,
                         AUTH[ns])
        assert st == 200, (st, b)

    def invoke(name, params, ns):
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" %
                         name, params, AUTH[ns])
        assert st == 200, (st, b)
        return b

    def cmds(ns, *cs):
        return invoke("cmds", {"cmds": list(cs)}, ns)["out"]

    for ns in ("alice", "bob", "carol"):
        put("cmds", CMDS, ns)
    put("conns", CONNS, "alice")
    put("inotify", INOTIFY, "alice")
    put("one_inotify", ONE_INOTIFY, "bob")

    @case
    def setrange_far_offset_refused():
        out = cmds("alice", ["SETRANGE", {"key": "big"}, 400 * MIB, "x"],
                   ["SETRANGE", {"key": "big"}, MIB, "x"],
                   ["SET", {"key": "small"}, "hello"], ["GET", {"key": "small"}],
                   ["SETRANGE", {"key": "small"}, 0, "J"], ["GET", {"key": "small"}])
        check("SETRANGE at 400 MB is refused", out[0][0] == "err" and
              "stateValueBytes" in out[0][1], out[0])
        check("SETRANGE just past the 1 MiB value limit is refused", out[1][0] == "err", out[1])
        check("nothing was allocated in Redis",
              c.redis("EXISTS", "gust:state:alice:big") == 0)
        check("a normal SET works", out[2] == ["ok", "OK"] and out[3] == ["ok", "hello"], out)
        check("a SETRANGE inside the value works", out[4] == ["ok", 5] and
              out[5] == ["ok", "Jello"], out)

    @case
    def value_size_bounded():
        half = 600 * 1024
        out = cmds("alice", ["SET", {"key": "v"}, {"fill": 2 * MIB}],
                   ["SET", {"key": "g"}, {"fill": half}],
                   ["APPEND", {"key": "g"}, {"fill": half}],
                   ["APPEND", {"key": "g"}, "tail"], ["STRLEN", {"key": "g"}],
                   ["HSET", {"key": "h"}, "f", {"fill": 2 * MIB}],
                   ["MSET", {"key": "m1"}, {"fill": half}, {"key": "m2"}, {"fill": half}],
                   ["SET", {"key": "exact"}, {"fill": MIB}],
                   ["SET", {"key": "over"}, {"fill": MIB + 1}])
        check("a 2 MiB SET is refused", out[0][0] == "err" and "stateValueBytes" in out[0][1],
              out[0])
        check("a 600 KiB SET works", out[1] == ["ok", "OK"], out[1])
        check("APPEND past the value limit is refused", out[2][0] == "err" and
              "APPEND" in out[2][1], out[2])
        check("a small APPEND works", out[3] == ["ok", half + 4], out[3])
        check("the value did not grow past the limit", out[4] == ["ok", half + 4], out[4])
        check("a 2 MiB HSET value is refused", out[5][0] == "err", out[5])
        check("an MSET carrying 1.2 MiB is refused", out[6][0] == "err", out[6])
        check("a value of exactly the limit works", out[7] == ["ok", "OK"], out[7])
        check("one byte more is refused", out[8][0] == "err", out[8])
        check("Redis holds none of the refused values",
              c.redis("EXISTS", "gust:state:alice:v", "gust:state:alice:h",
                      "gust:state:alice:m1", "gust:state:alice:over") == 0)
        # Redis lost its functions (a restart without persistence): the
        # invoker loads them again, and APPEND works (still bounded).
        c.redis("FUNCTION", "DELETE", "gust")
        out = None
        for _ in range(200):
            out = cmds("alice", ["APPEND", {"key": "g"}, "more"],
                       ["APPEND", {"key": "g"}, {"fill": half}])
            if out[0][0] == "ok":
                break
        check("after Redis lost the functions, APPEND works again and stays bounded",
              out[0] == ["ok", half + 8] and out[1][0] == "err", out)
        cmds("alice", ["DEL", {"key": "g"}, {"key": "small"}])

    @case
    def namespace_quota():
        chunk = 200 * 1024
        # Legitimate use first: carol writes under her quota.
        out = cmds("carol", ["SET", {"key": "k0"}, {"fill": chunk}])
        check("carol writes under her quota", out == [["ok", "OK"]], out)
        # Then fills it: writes are refused once the sampled bytes and what
        # was written since reach the quota (each SET is under the value
        # limit).
        refused = None
        for i in range(1, 200):
            out = cmds("carol", ["SET", {"key": "k%d" % i}, {"fill": chunk}])
            if out[0][0] == "err":
                refused = out[0][1]
                break
        check("carol over her quota is refused", refused is not None and "quota" in refused,
              refused)
        used = sum(c.redis("MEMORY", "USAGE", k) or 0
                   for k in c.redis("KEYS", "gust:state:carol:*"))
        check("carol's bytes stay near her quota (one request and Redis's overhead of slack)",
              used < 2 * MIB, used)
        out = cmds("carol", ["GET", {"key": "k0"}], ["STRLEN", {"key": "k0"}])
        check("carol still reads while over", out[1] == ["ok", chunk], out[1])
        out = cmds("bob", ["SET", {"key": "b"}, {"fill": chunk}], ["STRLEN", {"key": "b"}])
        check("bob writes while carol is over", out == [["ok", "OK"], ["ok", chunk]], out)
        # Deleting is allowed while over, and frees the quota.
        keys = [{"key": "k%d" % i} for i in range(0, 200)]
        out = cmds("carol", ["DEL"] + keys)
        check("carol may delete while over", out[0][0] == "ok", out)
        ok = None
        for _ in range(200):
            out = cmds("carol", ["SET", {"key": "again"}, "x"])
            if out[0][0] == "ok":
                ok = out
                break
        check("after deleting, carol writes again", ok == [["ok", "OK"]], out)

    @case
    def proxied_connections_bounded():
        got = invoke("conns", {"n": CONN_LIMIT + 1}, "alice")
        out = got["out"]
        check("connections up to the limit work", out[:CONN_LIMIT] == ["+PONG"] * CONN_LIMIT,
              out)
        check("one more is refused with an error", out[CONN_LIMIT].startswith("-ERR gust:") and
              "state connections" in out[CONN_LIMIT], out[CONN_LIMIT])
        check("once closed, a new connection works", got["again"] == "+PONG", got)
        out = cmds("alice", ["PING"])
        check("another sandbox of alice is not affected", out == [["ok", "PONG"]], out)

    @case
    def inotify_per_sandbox():
        with open("/proc/sys/fs/inotify/max_user_instances") as f:
            host_max = int(f.read())
        got = invoke("inotify", {}, "alice")
        check("alice's sandbox takes inotify instances until the kernel refuses (EMFILE)",
              got["errno"] == 24, got)
        check("the bound alice met is the per-user one, counted for her sandbox alone",
              got["count"] == host_max, (got, host_max))
        got = invoke("inotify", {"max": 1}, "alice")
        check("alice's instances are still held (warm sandbox)", got["count"] == host_max, got)
        got = invoke("one_inotify", {}, "bob")
        check("bob's inotify_init works while alice holds hers", got["fd"] >= 0, got)
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(0o2000000)
        e = ctypes.get_errno()
        if fd >= 0:
            os.close(fd)
        check("the host's inotify_init works too", fd >= 0, e)

    @case
    def sandboxes_own_distinct_id_ranges():
        # From the host: the sandboxes' pid 1 (children of the invoker) map
        # to distinct ranges, and each user namespace is owned by its range.
        inv = c.procs["invoker0"].p.pid
        ranges, owners = set(), {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != inv:
                    continue
                with open("/proc/%s/uid_map" % pid) as f:
                    m = f.read().split()
            except OSError:
                continue
            if len(m) == 3 and m[0] == "0":
                # NS_GET_OWNER_UID (_IO(0xb7, 4)): the uid the kernel charges.
                fd = os.open("/proc/%s/ns/user" % pid, os.O_RDONLY)
                try:
                    buf = bytearray(4)
                    fcntl.ioctl(fd, 0xb704, buf)
                finally:
                    os.close(fd)
                owners[int(m[1])] = struct.unpack("I", bytes(buf))[0]
                ranges.add((int(m[1]), int(m[2])))
        check("several sandboxes, each with its own host range", len(ranges) >= 3, ranges)
        check("ranges of 65536 aligned on 65536", all(n == 65536 and b % 65536 == 0
                                                      for b, n in ranges), ranges)
        check("each sandbox's user namespace is owned by its range, not root",
              owners and all(owners[b] == b for b in owners), owners)

    @case
    def invoker_refuses_to_start_without_userns():
        d = tempfile.mkdtemp(prefix="gust-nouserns-")
        base = [c.bin("gust-invoker"), "--id", "nouserns", "--state_dir", d,
                "--runtime_dir", os.path.join(SOURCE, "invoker", "runtimes"),
                "--metrics_port", "0", "--etcd", "http://127.0.0.1:1", "--cgroup", "none",
                "--netns_pool", "0", "--insecure_stores", "true"]
        r = subprocess.run(base + ["--userns_base", "0"], capture_output=True, text=True,
                           timeout=30)
        log = r.stdout + r.stderr
        check("userns_base 0 without the insecure flag: refused", r.returncode != 0 and
              "refusing to start" in log and "insecure_no_userns" in log, log[-600:])
        # A kernel that forbids user namespaces, simulated in a user
        # namespace of our own (the sysctl is per user namespace: the host's
        # is not touched).
        r = subprocess.run(["unshare", "-Ur", "sh", "-c",
                            'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"] +
                           base, capture_output=True, text=True, timeout=30)
        log = r.stdout + r.stderr
        check("a kernel without user namespaces: refused", r.returncode != 0 and
              "does not allow user namespaces" in log and "refusing to start" in log, log[-600:])
        # With the flag it starts (and warns); it then fails on the
        # unreachable etcd, or runs: either way it is stopped here.
        p = subprocess.Popen(base + ["--userns_base", "0", "--insecure_no_userns", "true"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.terminate()
            out, _ = p.communicate(timeout=30)
        check("with insecure_no_userns it goes on, with a WARN",
              "INV-USERNS-INSECURE" in out and "WARN" in out.upper(), out[-600:])
finally:
    c.__exit__(None, None, None)
finish()
