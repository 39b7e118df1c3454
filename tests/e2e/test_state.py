"""The state cache end to end (docs/state.md): read-your-writes across
activations and across sandboxes of one namespace, time to live, exact
concurrent increments, compare-and-set, hashes and lists from the built-in
Python module; and isolation: a function of one namespace can neither read
nor write another's keys nor run server commands, through the proxy or
(with the namespace's own credentials) straight at Redis."""
import json
import socket
import subprocess
import threading
import time

from cluster import Cluster, _resp_read
from gtest import case, check, finish

STATE = r'''
import gust_state as state
def main(a):
    op = a["op"]
    if op == "set":
        return {"ok": state.set(a["k"], a["v"], ttl=a.get("ttl"))}
    if op == "get":
        return {"v": state.get(a["k"])}
    if op == "incr":
        for _ in range(a.get("n", 1)):
            state.incr(a["k"])
        return {}
    if op == "cas":
        return {"ok": state.cas(a["k"], a.get("old"), a["new"])}
    if op == "struct":
        state.delete("h", "l")
        state.hset("h", mapping={"a": 1, "b": "x"})
        state.rpush("l", "1", "2", "3")
        return {"h": state.hgetall("h"), "hb": state.hget("h", "b"), "pop": state.lpop("l"),
                "l": state.lrange("l"), "rpop": state.rpop("l")}
    if op == "raw":
        out = []
        for cmd in a["cmds"]:
            try:
                out.append(["ok", repr(state.command(*cmd))])
            except Exception as e:
                out.append(["err", str(e)])
        return {"out": out}
'''

NODE = r'''
const state = require('gust_state');
async function main() {
  await state.set('nk', 5, {ttl: 10});
  const get = await state.get('nk');
  const n = await state.incr('nk');
  const cas = await state.cas('nc', null, 'a');
  const cas2 = await state.cas('nc', 'zzz', 'b');
  await state.delete('nh', 'nl');
  await state.hset('nh', {a: 1});
  await state.rpush('nl', 'x', 'y');
  return {get, n, cas, cas2, h: await state.hgetall('nh'), l: await state.lrange('nl'),
          py: await state.get('a')};
}
'''

# A raw socket: what any Redis client in any runtime would send.
RAW = r'''
import socket
def main(a):
    s = socket.socket(socket.AF_UNIX)
    s.connect("/run/gust/state.sock")
    s.sendall(a["data"].encode())
    s.settimeout(2)
    got = b""
    try:
        while got.count(b"\r\n") < a["lines"]:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    return {"got": got.decode("latin-1")}
'''

FORBIDDEN = [["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "*"], ["KEYS", "*"], ["SCAN", "0"],
             ["SCRIPT", "FLUSH"], ["EVAL", "return 1", "0"], ["MONITOR"], ["DEBUG", "SLEEP", "0"],
             ["SHUTDOWN"], ["AUTH", "default", ""], ["HELLO", "3", "AUTH", "default", "x"],
             ["ACL", "WHOAMI"], ["SELECT", "1"], ["RANDOMKEY"], ["CLIENT", "LIST"],
             ["SUBSCRIBE", "x"], ["BLPOP", "gust:state:guest:l", "0"]]


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for x in args:
        x = x.encode() if isinstance(x, str) else x
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out


c = Cluster("state", memory_mb=4096).__enter__()
try:
    for ns in ("guest", "other"):
        c.create_namespace(ns)
    AUTH = {"guest": c.create_key("guest"), "other": c.create_key("other")}
    time.sleep(0.3)

    def put(name, code, ns="guest", kind="python:3"):
        body = {"exec": {"kind": kind, "code": code}, "limits": {"memory": 128}}
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body,
                         AUTH[ns])
        assert st == 200, (st, b)

    def invoke(name, params, ns="guest"):
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % name,
                         params, AUTH[ns])
        assert st == 200, (st, b)
        return b

    for ns in ("guest", "other"):
        put("st", STATE, ns)
        put("st2", STATE, ns)
        put("raw", RAW, ns)

    @case
    def read_your_writes():
        check("set", invoke("st", {"op": "set", "k": "a", "v": "one"}) == {"ok": True})
        check("get in the next activation", invoke("st", {"op": "get", "k": "a"}) == {"v": "one"})
        # st2 is another action: another sandbox of the same namespace.
        check("get from another sandbox", invoke("st2", {"op": "get", "k": "a"}) == {"v": "one"})
        invoke("st2", {"op": "set", "k": "a", "v": "two"})
        check("write from another sandbox seen",
              invoke("st", {"op": "get", "k": "a"}) == {"v": "two"})
        check("stored under the namespace's prefix",
              c.redis("GET", "gust:state:guest:a") == b"two")

    @case
    def ttl():
        invoke("st", {"op": "set", "k": "t", "v": "x", "ttl": 0.3})
        check("before expiry", invoke("st", {"op": "get", "k": "t"}) == {"v": "x"})
        time.sleep(0.6)
        check("expired", invoke("st", {"op": "get", "k": "t"}) == {"v": None})

    @case
    def concurrent_increments():
        errs = []

        def one():
            try:
                invoke("st", {"op": "incr", "k": "n", "n": 10})
            except Exception as e:  # noqa
                errs.append(e)
        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check("20 parallel activations all ran", not errs, errs[:2])
        got = invoke("st2", {"op": "get", "k": "n"})
        check("20 x 10 increments add up exactly", got == {"v": "200"}, got)

    @case
    def cas_and_structures():
        check("cas on absent", invoke("st", {"op": "cas", "k": "c", "new": "1"}) == {"ok": True})
        check("cas with wrong old", invoke("st", {"op": "cas", "k": "c", "old": "0", "new": "2"})
              == {"ok": False})
        check("cas with right old", invoke("st", {"op": "cas", "k": "c", "old": "1", "new": "2"})
              == {"ok": True})
        check("value after cas", invoke("st", {"op": "get", "k": "c"}) == {"v": "2"})
        got = invoke("st", {"op": "struct"})
        check("hash and list ops", got == {"h": {"a": "1", "b": "x"}, "hb": "x", "pop": "1",
                                           "l": ["2", "3"], "rpop": "3"}, got)

    @case
    def isolation_keys():
        invoke("st", {"op": "set", "k": "secret", "v": "s3cr3t"})
        got = invoke("st", {"op": "raw", "cmds": [["GET", "gust:state:guest:secret"],
                                                    ["SET", "gust:state:guest:secret", "pwned"],
                                                    ["GET", "gust:state:other:x"]]}, ns="other")
        out = got["out"]
        check("other namespace cannot read guest's key", out[0][0] == "err" and "NOPERM" in out[0][1], out)
        check("other namespace cannot write guest's key", out[1][0] == "err", out)
        check("own prefix works", out[2][0] == "ok", out)
        check("guest's key unchanged", c.redis("GET", "gust:state:guest:secret") == b"s3cr3t")
        got = invoke("st", {"op": "get", "k": "secret"}, ns="other")
        check("same key name in another namespace is another key", got == {"v": None}, got)

    @case
    def isolation_commands():
        c.redis("SET", "canary", "1")
        got = invoke("st", {"op": "raw", "cmds": FORBIDDEN})["out"]
        for cmd, (kind, text) in zip(FORBIDDEN, got):
            check("refused: %s" % " ".join(cmd[:2]), kind == "err", text)
        check("data survives", c.redis("GET", "canary") == b"1")
        # Pipelined raw bytes: the refusal keeps replies in order.
        data = (resp("SET", "gust:state:guest:p", "1") + resp("AUTH", "default", "")
                + resp("GET", "gust:state:guest:p") + resp("FLUSHALL") + resp("PING")).decode()
        got = invoke("raw", {"data": data, "lines": 6})["got"]
        check("pipelined replies in order", got.startswith("+OK\r\n-ERR") and
              "$1\r\n1\r\n-ERR" in got and got.endswith("+PONG\r\n"), got)
        got = invoke("raw", {"data": "AUTH default x\r\nPING\r\n", "lines": 1})["got"]
        check("inline commands end the connection", got == "", got)

    @case
    def isolation_by_redis_itself():
        rec = json.loads(c.etcd_get("/gust/state/guest"))
        s = socket.create_connection(("127.0.0.1", c.redis_port), 5)
        f = s.makefile("rb")

        def call(*args):
            s.sendall(resp(*args))
            try:
                return _resp_read(f)
            except RuntimeError as e:
                return "ERR: %s" % e
        check("the namespace user authenticates", call("AUTH", rec["user"], rec["password"]) == "OK")
        check("own key readable", call("GET", "gust:state:guest:secret") == b"s3cr3t")
        for cmd in (["GET", "gust:state:other:x"], ["GET", "gust:act:x"], ["FLUSHALL"],
                    ["KEYS", "*"], ["CONFIG", "GET", "*"], ["EVAL", "return 1", "0"],
                    ["SCAN", "0"], ["DEBUG", "SLEEP", "0"], ["SHUTDOWN"]):
            r = call(*cmd)
            # DEBUG is refused before the ACL check when enable-debug-command is off.
            check("redis refuses the namespace user: %s" % " ".join(cmd[:2]),
                  str(r).startswith("ERR") and ("NOPERM" in str(r) or cmd[0] == "DEBUG"), r)
        s.close()

    @case
    def nodejs_module():
        put("nst", NODE, kind="nodejs:20")
        got = invoke("nst", {})
        check("node: set, incr, get, cas, hash, list", got == {
            "get": "5", "n": 6, "cas": True, "cas2": False, "h": {"a": "1"}, "l": ["x", "y"],
            "py": "two"}, got)

    @case
    def admin_lifecycle():
        def admin(*args):
            return subprocess.run([c.bin("gust"), "admin", "namespace"] + list(args),
                                  env=c.common_env(), capture_output=True, text=True, timeout=30)
        r = admin("create", "life")
        check("namespace create", r.returncode == 0, r.stderr)
        rec = json.loads(c.etcd_get("/gust/state/life") or "{}")
        check("password stored in etcd", len(rec.get("password", "")) == 40, rec)
        acl = c.redis("ACL", "GETUSER", "gust-ns-life")
        check("ACL user created with the namespace", acl is not None and
              b"~gust:state:life:*" in acl[acl.index(b"keys") + 1], acl)
        c.redis("SET", "gust:state:life:k", "v")
        r = admin("delete", "life")
        check("namespace delete", r.returncode == 0, r.stderr)
        check("ACL user removed with it", c.redis("ACL", "GETUSER", "gust-ns-life") is None)
        check("its state removed", c.redis("EXISTS", "gust:state:life:k") == 0)
        check("its password removed", c.etcd_get("/gust/state/life") is None)

    check("redis still up", c.procs["redis"].alive())
finally:
    c.__exit__(None, None, None)
finish()
