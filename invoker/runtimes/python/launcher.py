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


class Runtime:
    def __init__(self, results):
        self.results = results
        self.main = None
        self.run_env = ()  # env keys set by the previous activation

    def reply(self, obj, thrown=False):
        try:
            text = ENCODE(obj)
        except (TypeError, ValueError) as e:
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

    def run(self, msg):
        if self.main is None:
            return {"error": "not initialized"}, False
        for k in self.run_env:
            os.environ.pop(k, None)
        env = msg.get("env") or {}
        for k, v in env.items():
            os.environ[k] = v if isinstance(v, str) else json.dumps(v)
        self.run_env = tuple(env)
        try:
            return self.main(msg.get("value") or {}), False
        except Exception as e:
            log_exception()
            return {"error": describe(e)}, True


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as e:
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
        sys.stdout.flush()
        sys.stderr.flush()
        rt.reply(result, thrown)


if __name__ == "__main__":
    main()
