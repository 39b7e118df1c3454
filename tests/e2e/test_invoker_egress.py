"""Egress end to end: in a namespace the operator granted egress, an action
annotated "egress": true reaches a server the test runs in a network
namespace of its own (behind a veth pair the test makes), through the
invoker's bridge and NAT; the server's address is private (10.216.R.2), so
the operator allows it explicitly (the defaults deny it; tests/security/
test_egress.py tries the policy itself). An action without the annotation
cannot (it has only a loopback). Afterwards neither the invoker's bridge nor
its nftables table is left.

Traffic goes only to the test's namespace. Everything the test makes is
removed in `finally`, also when a check fails."""
import json
import os
import random
import re
import signal
import shutil
import subprocess
import tempfile

from cluster import Cluster, wait_until
from gtest import case, check, finish

R = random.randint(1, 250)
NS = "gusteg%d-%d" % (os.getpid() % 100000, R)
HOST_IF, NS_IF = "gte%d" % R, "gtp%d" % R
HOST_IP, SRV_IP = "10.216.%d.1" % R, "10.216.%d.2" % R

PROBE = ("import socket, urllib.request\n"
         "def main(a):\n"
         "    if a.get('peer'):\n"
         "        # Another sandbox: 'refused' means its address answered.\n"
         "        try:\n"
         "            socket.create_connection((a['peer'], 9), timeout=1).close()\n"
         "            return {'peer': 'open'}\n"
         "        except ConnectionRefusedError:\n"
         "            return {'peer': 'refused'}\n"
         "        except OSError as e:\n"
         "            return {'peer': 'unreachable', 'why': str(e)}\n"
         "    if a.get('whoami'):\n"
         "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "        s.connect(('%s', 8000))\n"
         "        return {'ip': s.getsockname()[0]}\n"
         "    try:\n"
         "        with urllib.request.urlopen('http://%s:8000/gust-egress', timeout=2) as r:\n"
         "            return {'reached': True, 'status': r.status}\n"
         "    except Exception as e:\n"
         "        return {'reached': False, 'why': str(e)}\n") % (SRV_IP, SRV_IP)


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True)


def tag_hash(c):
    with open(c.procs["invoker0"].log) as f:
        return re.findall(r"INV-SANDBOX-CFG tag \S+-([0-9a-f]{8}),", f.read())[-1]


server = None
c = None
www = tempfile.mkdtemp(prefix="gust-egress-")
with open(os.path.join(www, "gust-egress"), "w") as f:
    f.write("ok\n")
try:
    assert sh("ip", "netns", "add", NS).returncode == 0
    assert sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS).returncode == 0
    sh("ip", "addr", "add", HOST_IP + "/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "-n", NS, "addr", "add", SRV_IP + "/30", "dev", NS_IF)
    sh("ip", "-n", NS, "link", "set", NS_IF, "up")
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    server = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-m", "http.server", "8000",
                               "--bind", SRV_IP], cwd=www, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    assert wait_until(lambda: sh("curl", "-s", "-o", "/dev/null", "-m", "1",
                                 "http://%s:8000/" % SRV_IP).returncode == 0, timeout=10)

    c = Cluster("egress").__enter__()
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    # The operator's part (gust admin grant egress / policy egress allow).
    c.etcd_put("/gust/grants/guest", json.dumps({"egress": True}))
    c.etcd_put("/gust/policy/cluster", json.dumps({"egress": {"allow": [SRV_IP]}}))

    def put(name, annotations):
        body = {"exec": {"kind": "python:3", "code": PROBE}, "annotations": annotations}
        return c.api("PUT", "/api/v1/namespaces/_/actions/%s?overwrite=true" % name, body,
                     AUTH)[0] == 200

    assert wait_until(lambda: put("out", [{"key": "egress", "value": True}]), timeout=10)
    assert put("closed", [])

    def invoke(name):
        return c.api("POST", "/api/v1/namespaces/_/actions/%s?blocking=true&result=true" % name,
                     {}, AUTH)

    @case
    def egress_reaches_the_test_server():
        # The invoker follows the grant by a watch: the first run may race it.
        wait_until(lambda: isinstance(invoke("out")[1], dict) and invoke("out")[1].get("reached") is True, timeout=20)
        st, b, _ = invoke("out")
        check("an egress sandbox reaches the server in the test's namespace",
              st == 200 and b.get("reached") is True and b.get("status") == 200, (st, b))
        st, b, _ = invoke("out")
        check("and again, warm", st == 200 and b.get("reached") is True, (st, b))

    @case
    def egress_sandboxes_are_isolated_from_each_other():
        assert put("out2", [{"key": "egress", "value": True}])
        st, me, _ = c.api("POST", "/api/v1/namespaces/_/actions/out?blocking=true&result=true",
                          {"whoami": True}, AUTH)
        check("an egress sandbox has a bridge address", st == 200 and
              str(me.get("ip", "")).startswith("10.213."), (st, me))
        st, b, _ = c.api("POST", "/api/v1/namespaces/_/actions/out2?blocking=true&result=true",
                         {"peer": me.get("ip")}, AUTH)
        check("another egress sandbox cannot reach it (isolated bridge ports)",
              st == 200 and b.get("peer") == "unreachable", (st, b))

    @case
    def default_sandbox_cannot():
        st, b, _ = invoke("closed")
        check("a default sandbox cannot", st == 200 and b.get("reached") is False, (st, b))

    h = tag_hash(c)
    c.__exit__(None, None, None)
    c = None

    @case
    def nothing_left():
        links = sh("ip", "-o", "link").stdout
        check("no bridge or veth of the invoker left", "gb" + h not in links and "gv" + h[:6] not in links,
              [l for l in links.splitlines() if h[:6] in l])
        check("no nftables table of the invoker left", "gust_" + h not in sh("nft", "list", "tables").stdout)
finally:
    if c is not None:
        c.__exit__(None, None, None)
    if server is not None:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except OSError:
            pass
        server.wait()
    sh("ip", "link", "del", HOST_IF)
    sh("ip", "netns", "del", NS)
    shutil.rmtree(www, ignore_errors=True)
finish()
