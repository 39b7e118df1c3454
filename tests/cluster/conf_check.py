"""conf_check.py - every annotated file in deploy/conf/ is accepted by its daemon.

Each daemon is started with --config deploy/conf/<daemon>.conf (flags after
it move addresses and ports to loopback and free ports, so the file's own
parsing is what is tested: a daemon reads the file first and refuses an
unknown key or a bad value at once, naming file and line). It passes if the
daemon is still running after 2 s, or stopped for a reason that does not name
the file. A copy with one unknown key must be refused: the check can fail.
The TLS files the example names are replaced by a PKI made here (gust-pki).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cluster import free_port  # noqa: E402
from gtest import check, finish  # noqa: E402

BUILD = os.environ.get("GUST_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("GUST_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CONF = os.path.join(SOURCE, "deploy", "conf")
DAEMONS = {"gateway": "gateway/gust-gateway", "scheduler": "scheduler/gust-scheduler",
           "invoker": "invoker/gust-invoker", "trigger": "triggers/gust-trigger"}


def overrides(name, tmp):
    dead_etcd = "http://127.0.0.1:%d" % free_port()
    o = ["--etcd", dead_etcd, "--redis", "127.0.0.1:%d" % free_port()]
    if name == "gateway":
        o += ["--host", "127.0.0.1", "--port", str(free_port())]
    if name in ("scheduler", "invoker"):
        o += ["--listen", "tls+tcp://127.0.0.1:0"]
    if name == "scheduler":
        o += ["--status_listen", "tls+tcp://127.0.0.1:0"]
    pki = os.path.join(tmp, "pki")
    if not os.path.exists(os.path.join(pki, "ca.crt")):
        subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), pki, "init"], check=True,
                       stdout=subprocess.DEVNULL)
    base = os.path.join(pki, "%s-check" % name)
    if not os.path.exists(base + ".crt"):
        subprocess.run([os.path.join(SOURCE, "deploy", "gust-pki"), pki, "issue", name, "check"],
                       check=True, stdout=subprocess.DEVNULL)
    o += ["--transport_cert", base + ".crt", "--transport_key", base + ".key", "--transport_ca_dir", pki]
    if name in ("scheduler", "invoker", "trigger"):
        o += ["--metrics_host", "127.0.0.1", "--metrics_port", str(free_port())]
    if name == "invoker":
        o += ["--state_dir", os.path.join(tmp, "inv"),
              "--runtime_dir", os.path.join(SOURCE, "invoker", "runtimes"), "--stem_cells", ""]
    return o


def run(exe, conf, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUST_")}
    p = subprocess.Popen([exe, "--config", conf] + extra, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        p.wait(2.0)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        return True, p.stdout.read().decode(errors="replace")
    return False, p.stdout.read().decode(errors="replace")


tmp = tempfile.mkdtemp(prefix="gust-conf-")
try:
    tested = 0
    for name, rel in DAEMONS.items():
        conf = os.path.join(CONF, name + ".conf")
        exe = os.path.join(BUILD, rel)
        if not os.path.exists(conf) or not os.access(exe, os.X_OK):
            print("(%s: %s)" % (name, "no file" if not os.path.exists(conf) else "not built"))
            continue
        tested += 1
        running, out = run(exe, conf, overrides(name, tmp))
        refused = conf in out or "unknown config key" in out
        check("%s starts on deploy/conf/%s.conf" % (name, name), not refused,
              out.strip().splitlines()[-3:])
        print("   (%s)" % ("ran 2 s, stopped" if running else "exited: " +
                            (out.strip().splitlines() or [""])[-1]))
        bad = os.path.join(tmp, name + "-bad.conf")
        shutil.copy(conf, bad)
        with open(bad, "a") as f:
            f.write("no_such_key 1\n")
        running, out = run(exe, bad, overrides(name, tmp))
        check("%s refuses an unknown key in its file" % name,
              not running and "no_such_key" in out, out.strip().splitlines()[-2:])
    check("at least the gateway, scheduler and invoker files were tested", tested >= 3, tested)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
finish()
