"""InvokerStatus end to end: invokers report warm sandboxes to the leading
scheduler, which places an action's activations on the invoker that holds an
idle warm sandbox of it, even when that is not the action's home invoker; and
an invoker whose status stops (SIGSTOP) leaves placement and comes back when
it resumes (SIGCONT).

How it can fail: without status-driven placement every activation goes to the
action's home invoker (rendezvous hashing), so the 20 warm runs below would
land on `home`, not on `other`."""
import os
import re
import signal
import time
import urllib.request

from cluster import Cluster, wait_until
from gtest import case, check, finish

CODE = ("import os\n"
        "def main(args):\n"
        "    if args.get('die'):\n"
        "        os._exit(3)\n"
        "    return {'ok': True}\n")


def metric(c, i, name, label=None):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.inv_metrics[i], timeout=5) as r:
        text = r.read().decode()
    pat = r"^%s%s (\d+)" % (re.escape(name), r"\{" + re.escape(label) + r"\}" if label else "")
    m = re.search(pat, text, re.M)
    return int(m.group(1)) if m else 0


def starts(c, i):
    return sum(metric(c, i, "gust_invoker_starts_total", 'start="%s"' % k)
               for k in ("cold", "stem", "warm"))


def sched_invokers(c):
    st, b, _ = c.http("GET", "http://127.0.0.1:%d/health" % c.sched_metrics, timeout=2)
    return b.get("invokers", -1) if st == 200 else -1


c = Cluster("status", invokers=2, memory_mb=1024).__enter__()
stopped = []
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    # The gateway learns the new key through its etcd watch: retry until it has.
    put = lambda: c.api("PUT", "/api/v1/namespaces/_/actions/st?overwrite=true",
                        {"exec": {"kind": "python:3", "code": CODE}}, AUTH)[0] == 200
    assert wait_until(put, timeout=10, interval=0.1)

    def invoke(params=None):
        return c.api("POST", "/api/v1/namespaces/_/actions/st?blocking=true&result=true",
                     params or {}, AUTH)

    @case
    def status_is_sent():
        check("both invokers send status to the leader",
              wait_until(lambda: metric(c, 0, "gust_invoker_status_sent_total") > 0 and
                         metric(c, 1, "gust_invoker_status_sent_total") > 0, timeout=10))

    home = other = None

    @case
    def find_home():
        global home, other
        before = [starts(c, 0), starts(c, 1)]
        # The action dies: its home invoker is found and keeps no sandbox of it.
        st, b, _ = invoke({"die": True})
        check("the dying action fails as a developer error", st == 502, (st, b))
        after = [starts(c, 0), starts(c, 1)]
        ran = [i for i in (0, 1) if after[i] > before[i]]
        check("it ran on exactly one invoker", len(ran) == 1, (before, after))
        home = ran[0]
        other = 1 - home

    @case
    def silent_invoker_leaves_and_returns():
        p = c.procs["invoker%d" % home].p
        os.kill(p.pid, signal.SIGSTOP)
        stopped.append(p.pid)
        t0 = time.time()
        gone = wait_until(lambda: sched_invokers(c) == 1, timeout=8, interval=0.1)
        dt = time.time() - t0
        check("the scheduler drops the stopped invoker within 3-5 s", gone and dt < 5.5, dt)
        # Meanwhile the action warms up on the other invoker, the only one left.
        st, b, _ = invoke()
        check("the action runs on the other invoker", st == 200 and b == {"ok": True}, (st, b))
        os.kill(p.pid, signal.SIGCONT)
        stopped.remove(p.pid)
        t0 = time.time()
        back = wait_until(lambda: sched_invokers(c) == 2, timeout=10, interval=0.1)
        check("it comes back after SIGCONT", back, time.time() - t0)

    @case
    def warm_invoker_takes_them():
        time.sleep(1.0)  # a status or two from both
        b_home, b_other = starts(c, home), starts(c, other)
        w_other = metric(c, other, "gust_invoker_starts_total", 'start="warm"')
        ok = 0
        for _ in range(20):
            st, b, _ = invoke()
            ok += st == 200 and b == {"ok": True}
            time.sleep(0.05)
        check("20 activations succeed", ok == 20, ok)
        got_home = starts(c, home) - b_home
        got_other = starts(c, other) - b_other
        warm_other = metric(c, other, "gust_invoker_starts_total", 'start="warm"') - w_other
        check("the invoker with the idle warm sandbox took them (not the home one)",
              got_other >= 18 and warm_other >= 18 and got_home <= 2,
              "home %d, other %d (warm %d)" % (got_home, got_other, warm_other))
finally:
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    c.__exit__(None, None, None)
finish()
