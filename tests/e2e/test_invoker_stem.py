"""Stem cells end to end: the invoker prewarms sandboxes per runtime, a cold
start adopts one (with the action's memory limit) instead of creating a
sandbox, and the background thread replaces it."""
import base64
import re
import time
import urllib.request

from cluster import Cluster, wait_until
from gtest import case, check, finish

PY = "def main(args):\n    return {'py': args.get('x')}\n"
JS = "function main(args) { return {js: args.x}; }\n"
# A native action: a shell script speaking the protocol (the C launcher execs it).
SH = ("#!/bin/sh\nwhile read l; do echo '{\"sh\":true}' >&3; "
      "echo XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX; echo XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX >&2; done\n")
HOG = "def main(args):\n    keep = [bytearray(16 << 20) for i in range(args['mb'] // 16)]\n    return {'mb': args['mb']}\n"


def metrics(c):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.inv_metrics[0], timeout=5) as r:
        return r.read().decode()


def starts(c, kind):
    m = re.search(r'gust_invoker_starts_total\{start="%s"\} (\d+)' % kind, metrics(c))
    return int(m.group(1)) if m else 0


def tag_of(c):
    with open(c.procs["invoker0"].log) as f:
        return re.findall(r"INV-SANDBOX-CFG tag (\S+),", f.read())[-1]


def groups(tag):
    import glob
    import os
    return [g for g in glob.glob("/sys/fs/cgroup/memory/gust/%s/*" % tag) if os.path.isdir(g)]


c = Cluster("stem").__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    time.sleep(0.3)
    tag = tag_of(c)

    def put(name, kind, code, **limits):
        body = {"exec": {"kind": kind, "code": code}}
        if limits:
            body["limits"] = limits
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body, AUTH)
        assert st == 200, (st, b)

    def invoke(name, params=None):
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % name,
                     params or {}, AUTH)

    @case
    def prewarmed():
        check("the default 2 python + 2 node + 2 native stem cells are made at start",
              wait_until(lambda: len(groups(tag)) == 6, timeout=20), groups(tag))

    @case
    def cold_start_adopts_a_stem_cell():
        put("py", "python:3", PY)
        put("js", "nodejs:20", JS)
        before = starts(c, "stem")
        st, b, _ = invoke("py", {"x": 1})
        check("python from a stem cell", st == 200 and b == {"py": 1}, (st, b))
        st, b, _ = invoke("js", {"x": 2})
        check("node from a stem cell", st == 200 and b == {"js": 2}, (st, b))
        put("sh", "native", base64.b64encode(SH.encode()).decode())  # native code is base64
        st, b, _ = invoke("sh")
        check("native from a stem cell (the C launcher)", st == 200 and b == {"sh": True}, (st, b))
        check("the three cold starts took a stem cell", starts(c, "stem") == before + 3, starts(c, "stem"))
        check("stem cells are replaced in the background (6 stems + 3 warm)",
              wait_until(lambda: len(groups(tag)) == 9, timeout=20), groups(tag))

    @case
    def adopted_limits():
        put("hog", "python:3", HOG, memory=128)
        st, b, _ = invoke("hog", {"mb": 192})
        check("a stem cell takes the action's memory limit (128 MB < 192 MB)",
              st == 502 and "memory limit exceeded" in str(b), (st, b))
        put("hog2", "python:3", HOG, memory=512)
        st, b, _ = invoke("hog2", {"mb": 384})
        check("and a larger one (512 MB > the stem's 256 MB)", st == 200 and b == {"mb": 384}, (st, b))
finally:
    c.__exit__(None, None, None)
finish()
