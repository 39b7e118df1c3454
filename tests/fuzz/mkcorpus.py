#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (stdlib only).

Re-run after changing a seed here; inputs found by fuzzing (crashes kept as
regression seeds) are added to the corpus directories by hand and are not
touched by this script."""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SENT = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def varint(v):
    out = b""
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb(fields):
    """fields: list of (number, value); str/bytes length-delimited, bool/int varint."""
    out = b""
    for num, val in fields:
        if isinstance(val, (str, bytes)):
            val = val.encode() if isinstance(val, str) else val
            out += varint(num << 3 | 2) + varint(len(val)) + val
        else:
            out += varint(num << 3 | 0) + varint(int(val))
    return out


def request(over=None):
    f = [(1, "0123456789abcdef0123456789abcdef"), (2, "guest"), (3, "hello"), (4, "0.0.1"),
         (5, b'{"name":"world"}'), (7, True), (10, "python:3"), (11, "main"), (13, 256),
         (14, 60000), (15, 10 << 20), (16, "/gust/code/guest/hello:0.0.1"), (17, "guest"),
         (18, "http://127.0.0.1:3233"), (19, "guest"), (20, 1700000000000)]
    d = dict(f)
    d.update(over or {})
    return pb(sorted(d.items()))


def result(over=None):
    f = {1: "0123456789abcdef0123456789abcdef", 2: 0, 3: b'{"greeting":"hello world"}',
         5: 1700000000100, 6: 1700000000200, 8: 3, 12: "invoker0", 13: 256, 14: 60000,
         15: "python:3"}
    f.update(over or {})
    out = b""
    for k, v in sorted(f.items()):
        if k == 4:
            for line in v:
                out += pb([(4, line)])
        else:
            out += pb([(k, v)])
    return out


def proto():
    put("proto", "request", request())
    put("proto", "request-seq", request({3: "pkg/seq", 8: "fedcba9876543210fedcba9876543210",
                                           21: "1700000000000-0", 22: 2, 23: 4, 24: True}))
    put("proto", "request-nonblocking", request({7: False, 5: b"{}", 12: True, 10: "native"}))
    put("proto", "request-empty-id", request({1: ""}))
    put("proto", "request-mac", request({26: bytes(range(32)), 25: '{"redis":{"list":"x"}}',
                                         12: True, 24: True}))
    put("proto", "result", result({4: ["2026-01-01T00:00:00.000000Z stdout: hi"]}))
    put("proto", "result-error", result({2: 3, 3: b'{"error":"no invoker"}', 9: 503,
                                          10: "no invoker is available"}))
    put("proto", "result-accepted", result({11: True}))
    status = pb([(1, "invoker0"), (2, "tcp://127.0.0.1:9000"), (3, 2048), (4, 1024),
                 (5, pb([(1, "guest/hello@0.0.1"), (2, 1), (3, 0)])),
                 (5, pb([(1, "guest/pkg/a@0.0.2"), (2, 0), (3, 2)])), (6, 2),
                 (7, 1700000000000)])
    put("proto", "status", status)
    rq, rs = request(), result({4: ["a", "b\tc"]})
    put("proto", "record", struct.pack(">H", len(rq)) + rq + rs)
    rq = request({2: "ns\u00e9", 3: "a\"b\\c"})
    rs = result({2: 2, 3: b'{"error":"boom"}', 7: 40})
    put("proto", "record-escapes", struct.pack(">H", len(rq)) + rq + rs)


def params():
    def p(lst, body):
        a = json.dumps(lst).encode() if not isinstance(lst, bytes) else lst
        return struct.pack(">H", len(a)) + a + (body.encode() if isinstance(body, str) else body)
    put("params", "plain", p([{"key": "a", "value": 1}], '{"b":2}'))
    put("params", "override", p([{"key": "name", "value": "x"}, {"key": "n", "value": [1, {}]}],
                                '{"name":"caller","z":null}'))
    put("params", "no-defaults", p([], '{"a":{"b":[1,2,"}"]}}'))
    put("params", "empty-body", p([{"key": "a", "value": "v"}], ""))
    put("params", "empty-object", p([{"key": "a", "value": "v"}], "{ }"))
    put("params", "whitespace", p([{"key": "k", "value": True}], ' \r\n{\n\t"x" : "}{" ,\n "y":1}\n '))
    put("params", "unicode", p([{"key": "\u00e9", "value": "\u2603"}], '{"\\u00e9":"\\ud83d\\ude00"}'))
    put("params", "duplicates", p([{"key": "a", "value": 1}, {"key": "a", "value": 2}],
                                  '{"a":3,"a":4}'))
    put("params", "not-object", p([], "[1,2]"))


def b64():
    put("b64", "text", base64.b64encode(b"hello, world\x00\xff"))
    put("b64", "urlsafe", base64.urlsafe_b64encode(b"\xfb\xff\xfe" * 5))
    put("b64", "wrapped", b"UEsDBBQAAAAIA\nAAAIQA=\r\n")
    put("b64", "pad1", b"YWI=")
    put("b64", "pad2", b"YQ==")
    put("b64", "utf8", "caf\u00e9 \u2603 \"quoted\" back\\slash\n\ttab\x01\x7f".encode())
    put("b64", "empty", b"")


def config():
    put("config", "file", b"\x01# a comment\nname gateway\n  port 8080  \nflag yes\n"
        b"url \"http://a b\"\nlog_level debug\n\nneg -9223372036854775808\n")
    put("config", "file-bad-int", b"\x01port 70000\n")
    put("config", "file-unknown", b"\x01nope 1\n")
    put("config", "file-quoted-empty", b"\x01url \"\"\nother on\n")
    put("config", "flags", b"\x00--port\x003233\x00--flag\x00--name=x\x00--other\x00off")
    put("config", "flags-bad", b"\x00--port=abc")


def etcd_watch():
    def kv(k, v, rev, create=None):
        d = {"key": base64.b64encode(k.encode()).decode(), "mod_revision": str(rev),
             "create_revision": str(create or rev), "version": "1"}
        if v is not None:
            d["value"] = base64.b64encode(v.encode()).decode()
        return d
    created = json.dumps({"result": {"header": {"revision": "41"}, "created": True}})
    ev = json.dumps({"result": {"header": {"revision": "42"}, "events": [
        {"kv": kv("/gust/actions/guest/hello", '{"name":"hello"}', 42)},
        {"type": "DELETE", "kv": kv("/gust/actions/guest/old", None, 42)}]}})
    ev2 = json.dumps({"result": {"events": [{"kv": kv("/gust/actions/guest/a", "{}", 43)},
                                            {"kv": {"key": "!!!", "mod_revision": 44}}]}})
    put("etcd_watch", "stream", b"\x00\x00" + (created + "\n" + ev + "\n" + ev2 + "\n").encode())
    put("etcd_watch", "resume", b"\x93\x2b" + (ev + "\n" + ev2 + "\n").encode())
    put("etcd_watch", "compacted", b"\x05\x01" + (created + "\n" + json.dumps(
        {"result": {"canceled": True, "compact_revision": "30"}}) + "\n").encode())
    put("etcd_watch", "canceled", b"\x07\x00" + (json.dumps(
        {"result": {"canceled": True, "cancel_reason": "permission denied"}}) + "\n").encode())
    put("etcd_watch", "error", b"\x01\x00" + (json.dumps(
        {"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}) + "\n").encode())
    put("etcd_watch", "partial", b"\x11\x00" + (created + "\n\n" + ev[:40]).encode())


def gw_cache():
    action = {"namespace": "guest", "name": "hello", "version": "0.0.3",
              "exec": {"kind": "python:3", "main": "main", "binary": False},
              "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
              "parameters": [{"key": "name", "value": "world"}, {"key": "n", "value": [1, 2]}],
              "annotations": [{"key": "web-export", "value": True},
                              {"key": "require-whisk-auth", "value": "s3cret"},
                              {"key": "egress", "value": True}],
              "publish": False, "code_key": "/gust/code/guest/hello:0.0.3", "updated": 1}
    put("gw_cache", "action", b"\x00" + json.dumps(action).encode())
    pa = dict(action, namespace="guest/pkg", name="a")
    pa["annotations"] = [{"key": "require-whisk-auth", "value": 1234}, {"key": "raw-http", "value": True}]
    put("gw_cache", "action-pkg", b"\x00" + json.dumps(pa).encode())
    seq = {"namespace": "guest", "name": "seq", "version": "0.0.1",
           "exec": {"kind": "sequence", "components": ["/guest/a", "/guest/pkg/b"]},
           "limits": {"timeout": 60000, "memory": 256, "logs": 10}, "parameters": []}
    put("gw_cache", "action-seq", b"\x00" + json.dumps(seq).encode())
    put("gw_cache", "key", b"\x01" + json.dumps({"uuid": "x", "namespace": "guest",
                                                 "salt": "00ff", "hash": "ab" * 32}).encode())
    put("gw_cache", "key-legacy", b"\x01" + json.dumps({"uuid": "x", "namespace": "guest",
                                                        "key": "secret"}).encode())
    put("gw_cache", "scheduler", b"\x02" + json.dumps({"address": "tcp://127.0.0.1:9100"}).encode())
    put("gw_cache", "package", b"\x03" + json.dumps({"name": "pkg", "namespace": "guest",
        "binding": {"namespace": "other", "name": "p"}, "parameters": [{"key": "a", "value": 1}],
        "publish": True}).encode())
    put("gw_cache", "trigger", b"\x04" + json.dumps({"name": "t", "namespace": "guest",
        "annotations": [{"key": "feed", "value": "schedule"}]}).encode())
    put("gw_cache", "rule", b"\x05" + json.dumps({"name": "r", "status": "active",
        "trigger": {"name": "t", "path": "guest"}, "action": {"name": "hello", "path": "guest"}}).encode())
    put("gw_cache", "namespace", b"\x06" + json.dumps({"limits": {"concurrent": 10}}).encode())


def sandbox_io():
    def s(mode, res, out, err):
        return bytes([mode]) + res + b"\xff" + out + b"\xff" + err
    put("sandbox_io", "ok", s(3, b'{"greeting":"hello"}\n', b"hi\n" + SENT + b"\n", SENT + b"\n"))
    put("sandbox_io", "thrown", s(0x13, b'!{"error":"boom"}\n', b"trace\n" + SENT + b"\n",
                                  b"Traceback\n  line\n" + SENT + b"\n"))
    put("sandbox_io", "app-error", s(2, b'{"error":"bad input"}\n', SENT + b"\n", SENT + b"\n"))
    put("sandbox_io", "no-newline", s(0x22, b'{"a":1}\n', b"partial" + SENT + b"\n",
                                      b"x" * 50 + SENT + b"\n"))
    put("sandbox_io", "two", s(0x0b, b'{"a":1}\n{"b":2}\n', b"one\n" + SENT + b"\ntwo\n" + SENT + b"\n",
                               SENT + b"\n" + SENT + b"\n"))
    put("sandbox_io", "not-dict", s(3, b"[1,2]\n", SENT + b"\n", SENT + b"\n"))
    put("sandbox_io", "garbage", s(7, b"not json\n", b"x\n", b""))
    put("sandbox_io", "eof", s(4 | 3, b'{"a":', b"last words", b"bye"))
    put("sandbox_io", "limit", s(1, b'{"a":1}\n', b"0123456789" * 10 + b"\n" + SENT + b"\n",
                                 b"e" * 30 + b"\n" + SENT + b"\n"))


def resp():
    def cmd(*args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out
    put("resp", "get", cmd("GET", "gust:state:ns:k"))
    put("resp", "pipeline", cmd("SET", "k", "v", "PX", "100") + cmd("INCR", "n") +
        cmd("HGETALL", "h") + cmd("MULTI") + cmd("EXEC"))
    put("resp", "auth", cmd("AUTH", "default", "x") + cmd("FLUSHALL"))
    put("resp", "binary", cmd("SET", "k", bytes(range(256))))
    put("resp", "partial", cmd("LPUSH", "l", "a", "b")[:-3])
    put("resp", "inline", b"PING\r\n")
    put("resp", "bad-len", b"*2\r\n$3\r\nGET\r\n$99999999999\r\n")
    put("resp", "grow", cmd("SETRANGE", "k", "419430400", "x") + cmd("APPEND", "k", "vv") +
        b"*3\r\n$006\r\nAPPEND\r\n$1\r\nk\r\n$0\r\n\r\n")


def feeds():
    def trig(feed, params):
        return json.dumps({"name": "t", "annotations": [{"key": "feed", "value": feed}],
                           "parameters": [{"key": k, "value": v} for k, v in params.items()]})
    put("feeds", "stream", b"\x00\x02" + trig("redis-stream", {"stream": "orders"}).encode())
    put("feeds", "stream-journal", b"\x00\x02" + trig("redis-stream", {
        "stream": "gust:journal", "deadLetterStream": "gust:state:alice:dead",
        "group": "g:1", "startId": "0-1"}).encode())
    put("feeds", "stream-own", b"\x00\x00" + trig("redis-stream", {
        "stream": "gust:state:a:x", "redis": "10.0.0.1:6379"}).encode())
    put("feeds", "pubsub", b"\x00\x03" + trig("redis-pubsub", {
        "channels": "a,b", "patterns": ["n*", "gust:*", "[g]ust:x"]}).encode())
    put("feeds", "kafka", b"\x00\x03" + trig("kafka", {
        "brokers": "k1:9092,[::1]:9092", "topic": "t", "groupId": "gust-bob-x"}).encode())
    put("feeds", "binding-list", b"\x01\x02" + b'{"redis": {"list": "out"}}')
    put("feeds", "binding-bob", b"\x01\x02" + b'{"redis": {"list": "gust:state:bob:x"}}')
    put("feeds", "binding-addr", b"\x01\x01" +
        b'"{\\"redis\\": {\\"stream\\": \\"gust:journal\\", \\"address\\": \\"r:1\\"}}"')
    put("feeds", "binding-kafka", b"\x01\x04" + b'{"kafka": {"brokers": "a:1,b:2", "topic": "t"}}')
    put("feeds", "name-rel", b"\x02\x00orders")
    put("feeds", "name-abs", b"\x02\x01gust:state:ab:x")
    put("feeds", "name-prefix", b"\x02\x00gust:state:ab:x")
    put("feeds", "policy", b"\x03\x00" +
        b'{"targets": ["kafka.example:9092", "10.0.0.0/8", "[fe80::/10]:1", "127.0.0.1:*"]}'
        b"\x00" + b'{"targets": ["127.0.0.1:6379"], "egress": 1}' + b"\x00" +
        b"10.1.2.3:9092, kafka.example:9092" + b"\x00" + bytes([127, 0, 0, 1, 0x18, 0xeb]))
    put("feeds", "policy-bad", b"\x03\x00" + b'{"targets": "x"}' + b"\x00\x00[::1]:80\x00")


def integrity():
    """fuzz_integrity.c: byte 0 is the mode (0 journal entry as RESP, 1 request
    to sign, 2 ns/user/action/code key, 3 secret value)."""
    def bulk(b):
        b = b.encode() if isinstance(b, str) else b
        return b"$%d\r\n%s\r\n" % (len(b), b)

    def entry(*fields):
        return b"\x00*%d\r\n" % len(fields) + b"".join(bulk(f) for f in fields)
    rq = request()
    aid = "0123456789abcdef0123456789abcdef"
    put("integrity", "entry", entry("a", aid, "r", rq, "h", "ab" * 32))
    put("integrity", "entry-no-h", entry("a", aid, "r", rq))
    put("integrity", "entry-twice", entry("a", aid, "r", rq, "r", rq, "h", "00" * 32))
    put("integrity", "entry-odd", b"\x00*3\r\n$1\r\na\r\n:12\r\n*1\r\n$1\r\nh\r\n")
    put("integrity", "request", b"\x01" + rq)
    put("integrity", "request-mac", b"\x01" + request({26: b"\x01" * 32, 25: '{"redis":{}}'}))
    put("integrity", "request-pkg", b"\x01" + request({2: "alice", 19: "bob", 3: "pkg/a",
                                                      16: "/gust/code/alice/pkg/a:0.0.1"}))
    put("integrity", "request-foreign", b"\x01" + request({16: "/gust/code/guestx/a:0.0.1"}))
    put("integrity", "code-own", b"\x02alice\x00alice\x00mine\x00/gust/code/alice/mine:0.0.1")
    put("integrity", "code-prefix", b"\x02ali\x00ali\x00mine\x00/gust/code/alice/mine:0.0.1")
    put("integrity", "code-pkg", b"\x02alice\x00bob\x00p/a\x00/gust/code/alice/p/a:0.0.1")
    put("integrity", "secret", b"\x03" + b"0f" * 32)
    put("integrity", "secret-prev", b"\x03" + b"0f" * 32 + b" " + b"A1" * 32 + b"\n")
    put("integrity", "secret-bad", b"\x03" + b"0f" * 31 + b"zz")


def bearer():
    tok = b"0123456789abcdef" * 4
    put("bearer", "good", bytes([len(tok)]) + tok + b"Bearer " + tok)
    put("bearer", "case", bytes([len(tok)]) + tok + b"bEARER   " + tok)
    put("bearer", "wrong", bytes([len(tok)]) + tok + b"Bearer " + tok[:-1] + b"0")
    put("bearer", "prefix", bytes([len(tok)]) + tok + b"Bearer " + tok[:10])
    put("bearer", "basic", b"\x03xyzBasic eHl6Onh5eg==")
    put("bearer", "empty", b"\x03xyzBearer ")


if __name__ == "__main__":
    bearer()
    feeds()
    integrity()
    resp()
    proto()
    params()
    b64()
    config()
    etcd_watch()
    gw_cache()
    sandbox_io()
