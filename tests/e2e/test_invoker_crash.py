"""Crash safety of the invoker: SIGKILL it in the middle of an activation,
restart it, and check that nothing of its sandboxes is left on the host (no
process, mount, cgroup or network device), and that it serves again."""
import glob
import os
import re
import subprocess
import threading
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

SLEEPY = "import time\ndef main(args):\n    print('started', flush=True)\n    time.sleep(args.get('s', 30))\n    return {'done': True}\n"
FORKER = ("import os, time\ndef main(args):\n    for i in range(5):\n        if os.fork() == 0:\n"
          "            os.setsid()\n            time.sleep(60)\n            os._exit(0)\n"
          "    time.sleep(30)\n    return {}\n")


def invoker_tag(c):
    """The tag the invoker names its host objects with, from its log."""
    with open(c.procs["invoker0"].log) as f:
        tags = re.findall(r"INV-SANDBOX-CFG tag (\S+),", f.read())
    return tags[-1] if tags else None


def ready_count(c):
    with open(c.procs["invoker0"].log) as f:
        return f.read().count("INV-READY")


def restart(c):
    """Starts invoker0 again and waits until it has taken over (not just until
    the scheduler sees the old, not yet expired registration)."""
    n = ready_count(c)
    c.start_invoker(0)
    wait_until(lambda: ready_count(c) > n, timeout=20)
    c.wait_ready()


def cgroup_dirs(tag):
    return [d for d in glob.glob("/sys/fs/cgroup/*/gust/%s" % tag) + glob.glob("/sys/fs/cgroup/unified/gust/%s" % tag)
            if os.path.isdir(d)]


def groups_of(tag):
    """Sandbox cgroups of the tag, in every hierarchy (not the v1 freezer's
    .freeze-anchor: an empty group the invoker keeps frozen while it runs, and
    makes again when it restarts; see invoker/cgroup_v1.c)."""
    return [os.path.join(d, g) for d in cgroup_dirs(tag) for g in os.listdir(d)
            if os.path.isdir(os.path.join(d, g)) and not g.startswith(".")]


def procs_of(tag):
    pids = set()
    for g in groups_of(tag):
        try:
            with open(os.path.join(g, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return pids


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if path in l]


def sandbox_dirs(c):
    d = os.path.join(c.dir, "invoker0", "sandboxes")
    return os.listdir(d) if os.path.isdir(d) else []


def netdevs(tag_hash):
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if tag_hash in l]


c = Cluster("crash").__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    time.sleep(0.3)

    def put(name, code, **limits):
        body = {"exec": {"kind": "python:3", "code": code}}
        if limits:
            body["limits"] = limits
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body, AUTH)
        assert st == 200, (st, b)

    def invoke(name, params=None):
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % name,
                     params or {}, AUTH, timeout=90)

    @case
    def sigkill_mid_activation():
        tag = invoker_tag(c)
        check("the invoker logs its tag", tag, tag)
        put("sleepy", SLEEPY, timeout=60000)
        put("forker", FORKER, timeout=60000)
        results = {}
        ts = [threading.Thread(target=lambda n=n: results.__setitem__(n, invoke(n, {"s": 30})))
              for n in ("sleepy", "forker")]
        for t in ts:
            t.start()
        pids = wait_until(lambda: (lambda p: p if len(p) >= 2 + 2 + 5 else None)(procs_of(tag)), timeout=20)
        check("sandboxes are running (processes in the invoker's cgroups)", pids, procs_of(tag))
        pids = set(pids or ())
        check("their dirs exist", len(sandbox_dirs(c)) >= 2, sandbox_dirs(c))
        # The restarted invoker makes new stem cells at once: what must be gone
        # is what existed before the kill.
        old_groups = set(groups_of(tag))
        old_dirs = set(sandbox_dirs(c))

        c.procs["invoker0"].kill()  # SIGKILL: no cleanup of its own
        gone = wait_until(lambda: not any(alive(p) for p in pids), timeout=10)
        check("every sandbox process dies with the invoker", gone, [p for p in pids if alive(p)])

        restart(c)
        tag2 = invoker_tag(c)
        check("the restarted invoker has the same tag", tag2 == tag, (tag, tag2))
        check("no stray process", not any(alive(p) for p in pids), [p for p in pids if alive(p)])
        check("no stray cgroup", not old_groups & set(groups_of(tag)), old_groups & set(groups_of(tag)))
        check("no sandbox dir left", not old_dirs & set(sandbox_dirs(c)), old_dirs & set(sandbox_dirs(c)))
        check("no mount left under the test dir", mounts_under(c.dir) == [], mounts_under(c.dir))
        check("no network device of this invoker", netdevs(tag.rsplit("-", 1)[-1][:6]) == [],
              netdevs(tag.rsplit("-", 1)[-1][:6]))
        for t in ts:
            t.join(100)
        for n in ("sleepy", "forker"):
            st, b, _ = results.get(n, (None, None, None))
            check("the killed activation of %s ended with an error, not a hang" % n, st is not None and st != 200,
                  (st, b))
        st, b, _ = invoke("sleepy", {"s": 0})
        check("the restarted invoker serves", st == 200 and b == {"done": True}, (st, b))

    @case
    def clean_stop_leaves_nothing():
        tag = invoker_tag(c)
        st, b, _ = invoke("sleepy", {"s": 0})
        check("a warm sandbox exists", st == 200 and len(groups_of(tag)) >= 1, (st, groups_of(tag)))
        c.procs["invoker0"].stop()  # SIGTERM
        check("SIGTERM removes every cgroup of the invoker", cgroup_dirs(tag) == [], cgroup_dirs(tag))
        check("and every sandbox dir", sandbox_dirs(c) == [], sandbox_dirs(c))
        restart(c)
finally:
    c.__exit__(None, None, None)
finish()
