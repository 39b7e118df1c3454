"""sp.py - talk to the daemons' nng sockets from Python (standard library only).

nng's SP protocol over TCP: each side sends an 8-byte header (0, 'S', 'P', 0,
its protocol as 16 bits, 2 zero bytes), then every message is a 64-bit
big-endian length and the bytes; a req0 message starts with a 32-bit request
id (high bit set) that the rep0 answer echoes. tls+tcp:// is the same inside
a TLS session, so Python's ssl module is a peer of nng's mbedTLS. The tests use
it both as a daemon would (with a certificate of the cluster's PKI) and as an
attacker (no certificate, another role's, another PKI's, or plain TCP to a TLS
port), and encode the protobuf messages of proto/gust.proto by hand.
"""
import hashlib
import hmac
import json
import socket
import ssl
import struct

REQ0, REP0, PUSH0, PULL0 = 0x30, 0x31, 0x50, 0x51


# --- protobuf (proto/gust.proto) ----------------------------------------------
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_str(field, s):
    s = s if isinstance(s, bytes) else s.encode()
    return varint(field << 3 | 2) + varint(len(s)) + s


def pb_int(field, v):
    return varint(field << 3) + varint(v)


def pb_parse(buf):
    """{field: last value} of a message: ints for varints, bytes otherwise."""
    out, i = {}, 0

    def uvarint():
        nonlocal i
        v, n = 0, 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << (7 * n)
            n += 1
            if not b & 0x80:
                return v
    while i < len(buf):
        key = uvarint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            out[field] = uvarint()
        elif wt == 2:
            ln = uvarint()
            out[field] = buf[i:i + ln]
            i += ln
        else:
            raise ValueError("wire type %d" % wt)
    return out


def request_fields(aid, ns, user, action, rec, params):
    """The fields of an ActivationRequest for an action record from etcd."""
    limits = rec.get("limits") or {}
    return {
        "activation_id": aid, "namespace": ns, "user": user, "subject": user,
        "action": action, "version": rec.get("version", "0.0.1"),
        "code_key": rec["code_key"], "kind": rec["exec"]["kind"], "main": "main",
        "binding": "", "binary": False, "egress": False,
        "memory_mb": limits.get("memory", 256), "timeout_ms": limits.get("timeout", 60000),
        "log_limit": limits.get("logs", 10) * 1024 * 1024, "concurrency": 1,
        "params": json.dumps(params).encode(),
    }


def areq_mac(key, f):
    """common/integrity.c areq_mac: the domain with its NUL, each string as a
    64-bit big-endian length and its bytes, the flags and limits as 64-bit
    big-endian numbers, the params last."""
    def s(v):
        v = v if isinstance(v, bytes) else v.encode()
        return struct.pack(">Q", len(v)) + v

    def n(v):
        return struct.pack(">Q", v & ((1 << 64) - 1))
    msg = b"gust-areq-v1\x00"
    for k in ("activation_id", "namespace", "user", "subject", "action", "version",
              "code_key", "kind", "main", "binding"):
        msg += s(f[k])
    msg += n(int(f["binary"]) << 1 | int(f["egress"]))
    for k in ("memory_mb", "timeout_ms", "log_limit", "concurrency"):
        msg += n(f[k])
    msg += s(f["params"])
    return hmac.new(key, msg, hashlib.sha256).digest()


def encode_request(f, mac=None, blocking=False):
    """An ActivationRequest."""
    b = pb_str(1, f["activation_id"]) + pb_str(2, f["namespace"]) + pb_str(3, f["action"])
    b += pb_str(4, f["version"]) + pb_str(5, f["params"])
    if blocking:
        b += pb_int(7, 1)
    b += pb_str(10, f["kind"]) + pb_str(11, f["main"])
    b += pb_int(13, f["memory_mb"]) + pb_int(14, f["timeout_ms"]) + pb_int(15, f["log_limit"])
    b += pb_str(16, f["code_key"]) + pb_str(17, f["subject"]) + pb_str(19, f["user"])
    b += pb_int(23, f["concurrency"])
    if mac is not None:
        b += pb_str(26, mac)
    return b


def encode_status(inv_id, address, memory_mb, free_mb):
    """An InvokerStatus."""
    return (pb_str(1, inv_id) + pb_str(2, address) + pb_int(3, memory_mb) +
            pb_int(4, free_mb))


# --- TLS and the SP protocol ----------------------------------------------------
def tls_context(cert=None, key=None):
    """A TLS client context holding cert/key (None: no certificate at all). It
    does not check the daemon's certificate: these tests are about whether the
    daemon lets the client in."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def _read(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed by the peer")
        out += chunk
    return out


def connect(url, proto, ctx=None, timeout=10):
    """A socket to url that has exchanged SP headers as protocol `proto`.
    tls+tcp:// does the TLS handshake with ctx first (a refused certificate
    raises ssl.SSLError or ConnectionError); tcp:// is plain TCP, whatever
    listens there."""
    scheme, _, rest = url.partition("://")
    host, port = rest.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout)
    try:
        if scheme.startswith("tls+"):
            s = (ctx or tls_context()).wrap_socket(s)
        s.sendall(b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00")
        peer = _read(s, 8)
        if peer[:4] != b"\x00SP\x00":
            raise ConnectionError("not an SP peer: %r" % peer)
        return s
    except BaseException:
        s.close()
        raise


def request(url, body, ctx=None, timeout=30):
    """One req0 request; the rep0 answer's protobuf fields (pb_parse)."""
    s = connect(url, REQ0, ctx, timeout)
    try:
        payload = struct.pack(">I", 0x80000001) + body
        s.sendall(struct.pack(">Q", len(payload)) + payload)
        n = struct.unpack(">Q", _read(s, 8))[0]
        reply = _read(s, n)
        return pb_parse(reply[4:])  # after the request id the rep echoes
    finally:
        s.close()


def push(url, body, ctx=None, timeout=10):
    """One push0 message (no answer exists: the effect is the test's to see)."""
    s = connect(url, PUSH0, ctx, timeout)
    try:
        s.sendall(struct.pack(">Q", len(body)) + body)
    finally:
        s.close()
