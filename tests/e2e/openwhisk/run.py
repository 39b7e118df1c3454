"""Launcher of the npm-driven suite: starts a Gust cluster (tests/lib/cluster.py),
makes namespaces and keys with `gust admin`, installs the openwhisk client
with `npm ci` when node_modules is missing, and runs `node --test` against
the cluster. Exit 77 (skipped) only when node/npm are absent."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
from cluster import Cluster, skip, wait_until  # noqa: E402

if shutil.which("node") is None or shutil.which("npm") is None:
    skip("node and npm are needed for the openwhisk client suite")
if not os.path.isdir(os.path.join(HERE, "node_modules", "openwhisk")):
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE)
    if r.returncode != 0:
        print("npm ci failed")
        sys.exit(1)

with Cluster("openwhisk") as c:
    env = dict(os.environ, GUST_ETCD=c.etcd_url)

    def gust(*args):
        return subprocess.run([c.bin("gust")] + list(args), env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    for ns in ("guest", "other", "limited"):
        gust("admin", "namespace", "create", ns)
    keys = {ns: gust("admin", "key", "create", ns) for ns in ("guest", "other", "limited")}
    gust("admin", "namespace", "limits", "limited", "--fires-per-minute", "2")
    wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=keys["limited"])[0] == 200, 10)
    tenv = dict(os.environ, GUST_APIHOST=c.api_host, GUST_AUTH=keys["guest"],
                GUST_AUTH_OTHER=keys["other"], GUST_AUTH_LIMITED=keys["limited"])
    r = subprocess.run(["node", "--test", "--test-concurrency=1", HERE + "/gust.test.js"],
                       cwd=HERE, env=tenv)
    if r.returncode != 0:
        c.dump_logs()
    sys.exit(r.returncode)
