"""Gust's Python runtime: speaks the action-loop protocol of invoker/sandbox.h.

stdin  one JSON message per line: {"init": {...}} or {"value": {...}, "env": {...}}
fd 3   one JSON line per message: {"ok": true}, the action's result, or {"error": ...}
stdout/stderr  the action's logs, written before the answer on fd 3: the
               answer closes the activation's logs (no sentinel lines).

Started as `python3 -u launcher.py` inside the sandbox. Imports stay minimal so
that a cold start is fast; zip and traceback support is imported when needed.
"""
import json
import os
import sys

ACTION_DIR = "/tmp/action"
# Built once: json.dumps with options makes a new encoder on every call.
ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def _fast_json():
    """json.loads and ENCODE without their Python-level layers: on a small
    activation those are most of the time (1.4 and 1.0 us here against 0.4 and
    0.4 for the C scanner and encoder that they end up calling). Same output
    and the same refusals; None where this Python lacks the C accelerator."""
    try:
        import json.decoder
        import json.encoder
        import json.scanner

        scan = json.scanner.c_make_scanner(json.decoder.JSONDecoder())

        def not_json(o):
            raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)

        markers = {}
        iterencode = json.encoder.c_make_encoder(
            markers, not_json, json.encoder.encode_basestring_ascii, None, ":", ",",
            False, False, False)
    except (AttributeError, ImportError, TypeError):
        return None, None

    def loads(line):
        try:
            s = line.decode()
            obj, end = scan(s, 0)
            rest = s[end:]
            if rest == "\n" or not rest or rest.isspace():
                return obj
        except (StopIteration, ValueError):
            pass
        return json.loads(line)  # the slow path, for its error message

    def encode(obj):
        try:
            return "".join(iterencode(obj, 0))
        except BaseException:
            markers.clear()  # the encoder leaves what it was in on error
            raise

    return loads, encode


FAST_LOADS, FAST_ENCODE = _fast_json()
LOADS = FAST_LOADS or json.loads
ENCODE = FAST_ENCODE or ENCODE


class Runtime:
    def __init__(self, results):
        self.results = results
        self.main = None
        self.run_env = ()  # env keys set by the previous activation

    def reply(self, obj, thrown=False):
        try:
            text = ENCODE(obj)
        except (TypeError, ValueError, RecursionError) as e:
            text = json.dumps({"error": "The action returned a value that is not JSON: %s" % e})
        # "!" marks an uncaught exception: a developer error (invoker/sandbox.h).
        # os.write: one system call, none of a text stream's layers.
        write_all(self.results, (("!" if thrown else "") + text + "\n").encode())

    def init(self, msg):
        if self.main is not None:
            return {"error": "Cannot initialize the action more than once."}
        for k, v in (msg.get("env") or {}).items():
            os.environ[k] = v if isinstance(v, str) else json.dumps(v)
        name = msg.get("main") or "main"
        code = msg.get("code") or ""
        try:
            if msg.get("binary"):
                path, code = self.unzip(code)
            else:
                path = ACTION_DIR + "/__main__.py"
            ns = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
            exec(compile(code, path, "exec"), ns)
        except Exception as e:
            log_exception()
            return {"error": "Initialization has failed due to: %s" % describe(e)}
        fn = ns.get(name)
        if not callable(fn):
            return {"error": "The action has no function named '%s'." % name}
        self.main = fn
        return {"ok": True}

    @staticmethod
    def unzip(code):
        """Extracts a base64 zip into ACTION_DIR; returns its __main__.py."""
        import base64
        import io
        import zipfile

        data = base64.b64decode(code)
        os.makedirs(ACTION_DIR, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            z.extractall(ACTION_DIR)  # extractall drops absolute and ".." names
        path = os.path.join(ACTION_DIR, "__main__.py")
        sys.path.insert(0, ACTION_DIR)
        with open(path, encoding="utf-8") as f:
            return path, f.read()

    def set_env(self, env):
        """The run's env: the previous run's keys go, unchanged values stay
        (putenv for each would cost more than a small activation)."""
        environ = os.environ
        for k in self.run_env:
            if k not in env:
                environ.pop(k, None)
        for k, v in env.items():
            if not isinstance(v, str):
                v = json.dumps(v)
            if environ.get(k) != v:
                environ[k] = v
        self.run_env = tuple(env)

    def run(self, msg):
        if self.main is None:
            return {"error": "not initialized"}, False
        env = msg.get("env")
        if self.run_env or env:
            self.set_env(env or {})
        try:
            return self.main(msg.get("value") or {}), False
        except Exception as e:
            log_exception()
            return {"error": describe(e)}, True


def write_all(fd, data):
    n = os.write(fd, data)
    if n < len(data):  # a short write: only for answers bigger than the pipe
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view):]


def flush(stream):
    """An action may have closed or replaced the stream: that must not cost
    it its answer."""
    try:
        stream.flush()
    except Exception:
        pass


def describe(e):
    text = str(e)
    return text if text else type(e).__name__


def log_exception():
    import traceback

    traceback.print_exc()


def main():
    # The protocol owns stdin: actions that read stdin get /dev/null, not our
    # next message.
    proto = os.fdopen(os.dup(0), "rb")
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    rt = Runtime(3)
    while True:
        line = proto.readline()
        if not line:
            return
        try:
            msg = LOADS(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError) as e:
            msg, result = None, {"error": "bad message: %s" % e}
        thrown = False
        if msg is None:
            pass
        elif "init" in msg:
            result = rt.init(msg["init"] or {})
        else:
            result, thrown = rt.run(msg)
        # Whatever the action left in Python's streams goes before the
        # answer, which ends the activation's logs (with -u nothing normally
        # waits there).
        flush(sys.stdout)
        flush(sys.stderr)
        rt.reply(result, thrown)


if __name__ == "__main__":
    main()
