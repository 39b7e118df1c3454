"""Fair shares of the gateway and of etcd (issue 13, point 6: the gateway and etcd parts).

Attacks: a large body sent with a bad or missing key (the gateway must answer
401 on the head, without reading the body); a declared or chunked body over the
limit; a connection that sends its head or body a byte at a time; one namespace
filling etcd with entities or bytes; deleted entities never freeing etcd's
space; activation lists asked to walk an unbounded index. Beside each, the
legitimate use still works: a good key's request, a body under the limit,
another namespace creating while one is over its quota, a delete freeing quota."""
import base64
import json
import os
import socket
import subprocess
import time
import urllib.request

# Short deadlines and a quick compaction, so the test runs in seconds; the
# gateway and scheduler read these from the environment (their config tables).
os.environ["GUST_GATEWAY_HEADER_TIMEOUT_S"] = "2"
os.environ["GUST_GATEWAY_BODY_TIMEOUT_S"] = "3"
os.environ["GUST_SCHEDULER_ETCD_COMPACT_PERIOD_S"] = "1"
os.environ["GUST_SCHEDULER_ETCD_COMPACT_RETENTION_S"] = "2"

from cluster import Cluster, wait_until  # noqa: E402
from gtest import case, check, finish  # noqa: E402

c = Cluster("secquota").__enter__()

MAX_PAYLOAD = 1048576  # the gateway's default max_payload
MAX_CODE = 16777216    # and max_code


def basic(k):
    return "Basic " + base64.b64encode(k.encode()).decode()


def raw(head, body_chunks=(), read_timeout=20):
    """Sends a request head (and optionally body chunks, stopping when the
    server hangs up) on a fresh connection; returns (status line, bytes of
    body sent before the answer came, full answer text)."""
    s = socket.create_connection(("127.0.0.1", c.gw_port), 10)
    try:
        s.sendall(head.encode())
        sent = 0
        s.setblocking(False)
        answer = b""
        for ch in body_chunks:
            try:
                answer += s.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                s.setblocking(True)
                s.settimeout(10)
                s.sendall(ch)
                sent += len(ch)
            except OSError:
                break
            finally:
                s.setblocking(False)
        s.setblocking(True)
        s.settimeout(read_timeout)
        try:
            while b"\r\n\r\n" not in answer:
                d = s.recv(65536)
                if not d:
                    break
                answer += d
        except OSError:
            pass
        text = answer.decode(errors="replace")
        return text.split("\r\n", 1)[0], sent, text
    finally:
        s.close()


try:
    keys = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    for ns in keys:
        assert wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=keys[ns])[0] == 200, 10), ns

    def api(who, method, path, body=None, **kw):
        return c.api(method, "/api/v1/namespaces/_" + path, body, keys[who], **kw)

    def put_action(who, name, code="def main(a):\n    return a\n", overwrite=True):
        return api(who, "PUT", "/actions/%s%s" % (name, "?overwrite=true" if overwrite else ""),
                   {"exec": {"kind": "python:3", "code": code}})

    def head(method, path, auth=None, length=None, extra=""):
        h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % (method, path)
        if auth:
            h += "Authorization: %s\r\n" % basic(auth)
        if length is not None:
            h += "Content-Length: %d\r\n" % length
        return h + extra + "\r\n"

    @case
    def key_checked_on_the_head():
        bad = keys["alice"].split(":")[0] + ":" + "y" * 64
        # Only the head is sent: the gateway must answer without waiting for
        # the 16 MB it announces (before, it read them all, then checked the key).
        for what, auth in (("a bad key", bad), ("no key", None)):
            status, sent, text = raw(head("PUT", "/api/v1/namespaces/_/actions/big", auth, MAX_CODE))
            check("16 MB body with %s: 401 after the head alone" % what,
                  status.startswith("HTTP/1.1 401") and '"EAUTH"' in text, status)
            # Sending the body meanwhile: the answer is there before it is all sent.
            status, sent, text = raw(head("PUT", "/api/v1/namespaces/_/actions/big", auth, MAX_CODE),
                                     [b"x" * 65536] * (MAX_CODE // 65536))
            check("16 MB body with %s: 401 read before the body was all sent" % what,
                  status.startswith("HTTP/1.1 401") and sent < MAX_CODE, (status, sent))
        st, body, _ = c.api("PUT", "/api/v1/namespaces/_/actions/big", b"x" * (2 * MAX_PAYLOAD), bad)
        check("a client that writes its whole body before reading still reads the 401",
              st == 401 and body["code"] == "EAUTH", (st, body))
        status, sent, text = raw(head("PUT", "/api/v1/namespaces/_/actions/big", keys["alice"], 12,
                                      "Expect: 100-continue\r\n"))
        check("a good key is told to continue (100), not refused",
              status.startswith("HTTP/1.1 100"), status)
        st, body, _ = put_action("alice", "small")
        check("a good key's request is served", st == 200, (st, body))

    @case
    def declared_length_over_the_limit():
        status, sent, text = raw(head("POST", "/api/v1/namespaces/_/actions/small?blocking=true",
                                      keys["alice"], MAX_PAYLOAD + 1))
        check("Content-Length over max_payload is 413 on the head",
              status.startswith("HTTP/1.1 413") and "ETOOBIG" in text, status)
        status, sent, text = raw(head("PUT", "/api/v1/namespaces/_/actions/huge", keys["alice"],
                                      MAX_CODE + 1))
        check("Content-Length over max_code is 413 on the head", status.startswith("HTTP/1.1 413"), status)
        status, sent, text = raw(head("POST", "/api/v1/web/alice/default/small.json", None,
                                      MAX_PAYLOAD + 1))
        check("an anonymous web request over the limit is 413 on the head",
              status.startswith("HTTP/1.1 413"), status)
        st, body, _ = api("alice", "POST", "/actions/small?blocking=true&result=true",
                          {"pad": "z" * (MAX_PAYLOAD // 2)})
        check("a body under the limit is served", st == 200 and len(body["pad"]) == MAX_PAYLOAD // 2,
              (st, str(body)[:200]))

    @case
    def chunked_body_capped():
        h = ("POST /api/v1/namespaces/_/actions/small?blocking=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
             % basic(keys["alice"]))
        chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
        # 64 MB if nobody stops it; the gateway drops at most max_code (16 MB) after answering
        status, sent, text = raw(h, [chunk] * 1024)
        # The answer can be lost to the reset of a socket closed with unread
        # data; what must hold is that the gateway stopped taking the body.
        check("a chunked body over the limit is refused as it arrives (413, never read to its end)",
              sent < 1024 * len(chunk) and (status == "" or status.startswith("HTTP/1.1 413")),
              (status, sent))
        body = json.dumps({"v": "ok"}).encode()
        status, sent, text = raw(h, [b"%x\r\n%s\r\n" % (len(body), body), b"0\r\n\r\n"])
        check("a small chunked body is served", status.startswith("HTTP/1.1 200"), (status, text[:300]))

    def trickle(data, interval=0.5, limit_s=30):
        """Sends data a byte at a time; True when the server closed the connection."""
        s = socket.create_connection(("127.0.0.1", c.gw_port), 10)
        end = time.time() + limit_s
        try:
            i = 0
            while time.time() < end:
                try:
                    s.sendall(data[i % len(data):i % len(data) + 1])
                    i += 1
                    s.settimeout(interval)
                    d = s.recv(4096)
                    if not d:
                        return True, d
                    return True, d  # an answer (408 or the like) ends it too
                except socket.timeout:
                    continue
                except OSError:
                    return True, b""
            return False, b""
        finally:
            s.close()

    @case
    def slow_clients_are_closed():
        closed, d = trickle(b"GET /api/v1/namespaces HTTP/1.1\r\nX-Pad: " + b"a" * 10000)
        check("a head sent a byte at a time is closed by the server", closed and b" 200 " not in d, d[:100])
        good = head("POST", "/api/v1/namespaces/_/actions/small?blocking=true", keys["alice"], 1000)
        s = socket.create_connection(("127.0.0.1", c.gw_port), 10)
        closed = False
        try:
            s.sendall(good.encode())
            s.settimeout(0.5)
            end = time.time() + 30
            while time.time() < end and not closed:
                try:
                    s.sendall(b" ")
                    d = s.recv(4096)
                    closed = True
                    check("nothing is answered to a body that never completes", b" 200 " not in d, d[:100])
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
        finally:
            s.close()
        check("a body sent a byte at a time is closed by the server", closed)
        st, body, _ = api("alice", "GET", "/actions/small")
        check("a normal request is served meanwhile", st == 200, (st, body))

    def gust(*args):
        env = dict(os.environ)
        env["GUST_ETCD"] = c.etcd_url
        p = subprocess.run([c.bin("gust")] + list(args), capture_output=True, text=True, env=env,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    @case
    def entity_count_quota():
        rc, out, err = gust("admin", "namespace", "limits", "carol", "--entities", "3")
        check("gust admin sets maxEntities", rc == 0, err)
        rc, out, err = gust("admin", "namespace", "limits", "carol")
        check("gust admin shows it", rc == 0 and "maxEntities" in out and " 3" in out, out)
        time.sleep(0.5)  # the gateway's namespace mirror
        ok = [put_action("carol", "a1")[0], api("carol", "PUT", "/packages/p1", {})[0],
              api("carol", "PUT", "/triggers/t1", {})[0]]
        check("three entities fit", ok == [200, 200, 200], ok)
        st, body, _ = put_action("carol", "a2")
        check("a fourth action is 403 EQUOTA naming maxEntities",
              st == 403 and body["code"] == "EQUOTA" and "maxEntities" in body["error"], (st, body))
        st, body, _ = api("carol", "PUT", "/packages/p2", {})
        check("a fourth package is 403", st == 403 and body["code"] == "EQUOTA", (st, body))
        st, body, _ = api("carol", "PUT", "/rules/r1", {"trigger": "t1", "action": "a1"})
        check("a fourth entity as a rule is 403", st == 403 and body["code"] == "EQUOTA", (st, body))
        st, body, _ = put_action("carol", "a1", code="def main(a):\n    return {'v': 2}\n")
        check("updating an existing action still works at the limit", st == 200, (st, body))
        for i in range(5):
            st, body, _ = put_action("bob", "b%d" % i)
            if st != 200:
                break
        check("another namespace still creates", st == 200, (st, body))
        st, body, _ = api("carol", "DELETE", "/actions/a1")
        check("delete", st == 200, (st, body))
        st, body, _ = put_action("carol", "a2")
        check("a delete frees the quota", st == 200, (st, body))

    @case
    def entity_bytes_quota():
        c.create_namespace("alice", {"concurrentInvocations": 1000, "invocationsPerMinute": 100000,
                                     "maxEntities": 100, "maxEntityBytes": 40000})
        time.sleep(0.5)
        code = "def main(a):\n    return a\n#" + "p" * 15000 + "\n"
        st, body, _ = put_action("alice", "big1", code=code)
        check("15 KB of code fits 40 KB", st == 200, (st, str(body)[:200]))
        st, body, _ = put_action("alice", "big2", code=code)
        check("30 KB fits 40 KB", st == 200, (st, str(body)[:200]))
        st, body, _ = put_action("alice", "big3", code=code)
        check("45 KB is 403 EQUOTA naming maxEntityBytes",
              st == 403 and body["code"] == "EQUOTA" and "maxEntityBytes" in body["error"], (st, body))
        st, body, _ = put_action("alice", "big1", code=code + "#" + "q" * 15000)
        check("growing an action over the quota is 403", st == 403, (st, body))
        st, body, _ = api("alice", "PUT", "/packages/pbig", {"parameters": [{"key": "k", "value": "v" * 15000}]})
        check("a package's parameters count too", st == 403 and body["code"] == "EQUOTA", (st, body))
        for n in ("big1", "big2", "big3"):
            st, body, _ = put_action("bob", n, code=code)
        check("another namespace still stores", st == 200, (st, body))
        st, body, _ = put_action("alice", "big1", code="def main(a):\n    return a\n")
        check("shrinking an action is allowed", st == 200, (st, body))
        st, body, _ = put_action("alice", "big3", code=code)
        check("shrinking freed the bytes", st == 200, (st, body))
        st, body, _ = api("alice", "DELETE", "/actions/big2")
        st, body, _ = put_action("alice", "big4", code=code)
        check("a delete frees the bytes", st == 200, (st, body))

    @case
    def activation_list_bounds():
        for i in range(3):
            api("bob", "POST", "/actions/b0?blocking=true", {"i": i})
        wait_until(lambda: len(api("bob", "GET", "/activations?limit=5")[1] or []) >= 3, 10)
        st, body, _ = api("bob", "GET", "/activations?limit=201")
        check("limit over 200 is 400 naming it", st == 400 and "limit" in body["error"], (st, body))
        st, body, _ = api("bob", "GET", "/activations?skip=100001")
        check("skip over 100000 is 400 naming it", st == 400 and "skip" in body["error"], (st, body))
        st, body, _ = api("bob", "GET", "/activations?skip=100000&limit=200")
        check("the deepest page allowed is served (empty)", st == 200 and body == [], (st, body))
        st, a, _ = api("bob", "GET", "/activations?limit=1&skip=0")
        st2, b, _ = api("bob", "GET", "/activations?limit=1&skip=1")
        st3, ab, _ = api("bob", "GET", "/activations?limit=2")
        check("skip and limit page through the list",
              st == st2 == st3 == 200 and len(a) == len(b) == 1 and
              [x["activationId"] for x in ab] == [a[0]["activationId"], b[0]["activationId"]], (a, b, ab))

    @case
    def etcd_compaction():
        key = "/gust/test-compaction"
        c.etcd_put(key, "v1")
        r = c.etcd("/v3/kv/range", {"key": c._b64(key)})
        old_rev = int(r["kvs"][0]["mod_revision"])
        c.etcd("/v3/kv/deleterange", {"key": c._b64(key)})

        def compacted():
            try:
                c.etcd("/v3/kv/range", {"key": c._b64(key), "revision": old_rev})
                return False
            except urllib.error.HTTPError as e:
                return "compacted" in e.read().decode(errors="replace")
        check("the leader compacts etcd's history, so the deleted value's revision is gone",
              wait_until(compacted, 30, 0.2))
        check("the compaction is counted",
              (c.metric(c.sched_metrics, "gust_scheduler_etcd_compactions_total") or 0) >= 1)
        st, body, _ = put_action("bob", "after")
        st2, body2, _ = api("bob", "POST", "/actions/after?blocking=true&result=true", {"z": 1})
        check("the cluster still serves writes and invokes after compactions",
              st == 200 and st2 == 200 and body2 == {"z": 1}, (st, body, st2, body2))

finally:
    c.__exit__(None, None, None)

finish()
