"""gust_state: the namespace's state cache, for Python actions (docs/state.md).

    import gust_state as state
    state.set("visits", 0, ttl=60)
    state.incr("visits")
    state.get("visits")            # -> "1"

Keys are the function's own names: the module puts the namespace's prefix
(GUST_STATE_PREFIX, e.g. "gust:state:<ns>:") in front of them, and Redis lets
the namespace's user touch nothing else. Values are stored as strings (str,
bytes and numbers are accepted) and come back as str, or None when absent.

The connection is the invoker's Unix socket /run/gust/state.sock
(GUST_STATE_SOCKET); it is opened once per sandbox and kept.
"""
import os
import socket

_sock = None
_rfile = None


class StateError(Exception):
    """An error reply from the state cache."""


def _prefix():
    return os.environ.get("GUST_STATE_PREFIX", "")


def _connect():
    global _sock, _rfile
    path = os.environ.get("GUST_STATE_SOCKET", "/run/gust/state.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    _sock, _rfile = s, s.makefile("rb")


def _enc(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool):
        v = int(v)
    return str(v).encode()


def _pack(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = _enc(a)
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _read():
    line = _rfile.readline()
    if not line:
        raise ConnectionError("the state cache closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return StateError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = _rfile.read(n + 2)[:-2]
        return data.decode("utf-8", "surrogateescape")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read() for _ in range(n)]
    raise ConnectionError("bad reply from the state cache: %r" % line)


def _pipeline(cmds):
    """Sends the commands at once; returns their replies (errors as values)."""
    if _sock is None:
        _connect()
    data = b"".join(_pack(c) for c in cmds)
    try:
        _sock.sendall(data)
        return [_read() for _ in cmds]
    except (OSError, ConnectionError):
        _reset()
        raise


def _reset():
    global _sock, _rfile
    try:
        if _sock is not None:
            _sock.close()
    finally:
        _sock = _rfile = None


def command(*args):
    """Sends one raw command (keys are not prefixed); raises StateError."""
    r = _pipeline([args])[0]
    if isinstance(r, StateError):
        raise r
    return r


def _k(key):
    return _prefix() + key


def get(key):
    return command("GET", _k(key))


def set(key, value, ttl=None):
    """ttl: seconds (float allowed) until the key expires; None keeps it."""
    if ttl is None:
        return command("SET", _k(key), value) == "OK"
    return command("SET", _k(key), value, "PX", max(1, int(ttl * 1000))) == "OK"


def delete(*keys):
    return command("DEL", *[_k(k) for k in keys])


def incr(key, by=1):
    return command("INCRBY", _k(key), by)


def expire(key, ttl):
    return command("PEXPIRE", _k(key), max(1, int(ttl * 1000))) == 1


def cas(key, expected, new, ttl=None):
    """Sets key to new only if its value is expected (None: absent). True when set."""
    k = _k(key)
    set_cmd = ("SET", k, new) if ttl is None else ("SET", k, new, "PX", max(1, int(ttl * 1000)))
    command("WATCH", k)
    try:
        cur = command("GET", k)
        want = None if expected is None else _enc(expected).decode("utf-8", "surrogateescape")
        if cur != want:
            command("UNWATCH")
            return False
        r = _pipeline([("MULTI",), set_cmd, ("EXEC",)])
    except BaseException:
        _reset()  # a half-done transaction must not leak into the next call
        raise
    return isinstance(r[2], list)


def hget(key, field):
    return command("HGET", _k(key), field)


def hset(key, field=None, value=None, mapping=None):
    args = []
    if field is not None:
        args += [field, value]
    for f, v in (mapping or {}).items():
        args += [f, v]
    return command("HSET", _k(key), *args)


def hgetall(key):
    r = command("HGETALL", _k(key))
    return dict(zip(r[::2], r[1::2]))


def hdel(key, *fields):
    return command("HDEL", _k(key), *fields)


def lpush(key, *values):
    return command("LPUSH", _k(key), *values)


def rpush(key, *values):
    return command("RPUSH", _k(key), *values)


def lpop(key):
    return command("LPOP", _k(key))


def rpop(key):
    return command("RPOP", _k(key))


def lrange(key, start=0, stop=-1):
    return command("LRANGE", _k(key), start, stop)
