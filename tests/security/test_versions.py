"""Identity of code never repeats (issue 13, point 4).

The attacks, each shown to fail beside the legitimate use of the feature:

- delete an action and create it again under the same name: it used to start
  again at 0.0.1 with the code key of the first one, and a warm invoker (its
  code cache and warm sandboxes keyed by version) ran the OLD code. Now the
  new code runs at once, on the warm invoker, and the version is one that no
  earlier action of the name had; for a package's action and a sequence too;
- N writers overwrite one action at once: each used to write the same code
  key, so the winning record could point at a loser's bytes. Now the record
  that stands has the version and the code its winner wrote (GET with code
  and an invocation agree), and no loser's code is left in etcd.
- the version mark of a deleted action is the namespace's own: bob creating
  the same name in his namespace starts at 0.0.1.
One invoker, so that every call lands where the warm sandboxes are."""
import base64
import os
import subprocess
import threading

from cluster import Cluster, wait_until
from gtest import case, check, finish


def code_of(tag):
    # a global counter shows whether a sandbox was reused (warm)
    return ("n = 0\n"
            "def main(a):\n"
            "    global n\n"
            "    n += 1\n"
            "    return {'tag': %r, 'calls': n}\n" % tag)


c = Cluster("versions", invokers=1).__enter__()
try:
    KEYS = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        KEYS[ns] = c.create_key(ns)
    wait_until(lambda: all(c.api("GET", "/api/v1/namespaces", auth=k)[0] == 200
                           for k in KEYS.values()), timeout=15)

    def api(who, method, path, body=None, **kw):
        return c.api(method, "/api/v1/namespaces/_" + path, body, KEYS[who], **kw)

    def put(who, name, tag, overwrite=False):
        return api(who, "PUT", "/actions/%s%s" % (name, "?overwrite=true" if overwrite else ""),
                   {"exec": {"kind": "python:3", "code": code_of(tag)}})

    def invoke(who, name):
        st, body, _ = api(who, "POST", "/actions/%s?blocking=true&result=true" % name, {})
        return body if st == 200 else {"status": st, "body": body}

    def code_keys(ns, name):
        prefix = "/gust/code/%s/%s:" % (ns, name)
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = c.etcd("/v3/kv/range", {"key": c._b64(prefix), "range_end": c._b64(end)})
        return [base64.b64decode(kv["key"]).decode() for kv in r.get("kvs", [])]

    def recreate_rounds(who, name, rounds=4):
        """Creates, warms, deletes and re-creates name; returns the versions."""
        versions = []
        for i in range(rounds):
            tag = "%s-round%d" % (name, i)
            st, body, _ = put(who, name, tag)
            check("%s round %d: created" % (name, i), st == 200, (st, body))
            versions.append(body.get("version") if st == 200 else None)
            r1 = invoke(who, name)
            check("%s round %d: the new code runs at once" % (name, i), r1.get("tag") == tag, r1)
            r2 = invoke(who, name)
            # the legitimate warm reuse within one action's life
            check("%s round %d: warm sandbox reused" % (name, i),
                  r2.get("tag") == tag and r2.get("calls") == 2, r2)
            st, body, _ = api(who, "DELETE", "/actions/%s" % name)
            check("%s round %d: deleted" % (name, i), st == 200, (st, body))
        check("%s: every re-creation has a version no earlier one had" % name,
              None not in versions and len(set(versions)) == len(versions), versions)
        return versions

    @case
    def delete_and_create_runs_new_code():
        vs = recreate_rounds("alice", "fn")
        check("versions go on counting across deletes", vs == ["0.0.1", "0.0.2", "0.0.3", "0.0.4"],
              vs)
        check("a deleted action leaves no code behind", code_keys("alice", "fn") == [],
              code_keys("alice", "fn"))

    @case
    def updates_and_recreation_mixed():
        st, body, _ = put("alice", "mix", "mix-a")
        v = [body.get("version")]
        invoke("alice", "mix")
        st, body, _ = put("alice", "mix", "mix-b", overwrite=True)
        v.append(body.get("version"))
        check("an update runs its code", invoke("alice", "mix").get("tag") == "mix-b")
        # an update without code: new version, same code, a fresh sandbox
        st, body, _ = api("alice", "PUT", "/actions/mix?overwrite=true",
                          {"limits": {"memory": 192}})
        v.append(body.get("version"))
        r = invoke("alice", "mix")
        check("an update without code keeps the code",
              st == 200 and r.get("tag") == "mix-b", (st, r))
        api("alice", "DELETE", "/actions/mix")
        st, body, _ = put("alice", "mix", "mix-c")
        v.append(body.get("version"))
        check("re-created after updates: new code", invoke("alice", "mix").get("tag") == "mix-c")
        check("versions never repeat", len(set(v)) == len(v) and v[-1] == "0.0.4", v)
        st, body, _ = api("alice", "GET", "/actions/mix")
        check("GET shows the re-created version and code",
              st == 200 and body["version"] == "0.0.4" and "mix-c" in body["exec"]["code"],
              (st, body))

    @case
    def package_actions_and_sequences():
        st, body, _ = api("alice", "PUT", "/packages/p", {})
        check("package", st == 200, (st, body))
        recreate_rounds("alice", "p/act", rounds=3)
        check("a deleted package action leaves no code behind", code_keys("alice", "p/act") == [])
        put("alice", "s1", "seq-one")
        put("alice", "s2", "seq-two")
        versions = []
        for comp, tag in (("s1", "seq-one"), ("s2", "seq-two")):
            st, body, _ = api("alice", "PUT", "/actions/seq",
                              {"exec": {"kind": "sequence", "components": ["/alice/" + comp]}})
            check("sequence of %s" % comp, st == 200, (st, body))
            versions.append(body.get("version"))
            r = invoke("alice", "seq")
            check("the re-created sequence runs its own component (%s)" % comp,
                  r.get("tag") == tag, r)
            api("alice", "DELETE", "/actions/seq")
        check("a re-created sequence has a new version", versions == ["0.0.1", "0.0.2"],
              versions)

    @case
    def version_marks_are_per_namespace():
        st, body, _ = put("bob", "fn", "bob-fn")
        check("bob's fn (alice deleted hers 4 times) starts at 0.0.1",
              st == 200 and body["version"] == "0.0.1", (st, body))
        check("bob's fn runs bob's code", invoke("bob", "fn").get("tag") == "bob-fn")
        st, body, _ = put("alice", "fn", "alice-fn-again")
        check("alice's fn goes on from her own mark",
              st == 200 and body["version"] == "0.0.5", (st, body))
        check("alice's fn runs her new code", invoke("alice", "fn").get("tag") == "alice-fn-again")

    @case
    def concurrent_overwrites_keep_their_own_code():
        put("carol", "race", "race-init")
        invoke("carol", "race")  # warm, so a stale sandbox would show
        N = 8
        for rnd in range(4):
            out = [None] * N
            go = threading.Barrier(N)

            def writer(i):
                go.wait()
                out[i] = put("carol", "race", "race-%d-%d" % (rnd, i), overwrite=True)

            ts = [threading.Thread(target=writer, args=(i,)) for i in range(N)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            won = {}
            for i, (st, body, _) in enumerate(out):
                check("round %d writer %d: 200 or 409" % (rnd, i), st in (200, 409), (st, body))
                if st == 200:
                    won[body["version"]] = "race-%d-%d" % (rnd, i)
                    check("round %d writer %d: its answer has its own code" % (rnd, i),
                          ("race-%d-%d'" % (rnd, i)) in body["exec"]["code"], body)
            check("round %d: at least one writer won" % rnd, won, out)
            st, rec, _ = api("carol", "GET", "/actions/race?code=true")
            want = won.get(rec.get("version")) if st == 200 else None
            check("round %d: the standing record is a winner's" % rnd, want is not None,
                  (rec, won))
            check("round %d: its code is what that winner wrote" % rnd,
                  want is not None and ("'%s'" % want) in rec["exec"]["code"], (rec, won))
            r = invoke("carol", "race")
            check("round %d: invoking runs that winner's code" % rnd,
                  want is not None and r.get("tag") == want, (r, want))
            keys = code_keys("carol", "race")
            check("round %d: no loser's code is left behind" % rnd, len(keys) == 1, keys)

    @case
    def marks_go_with_the_namespace():
        c.create_namespace("dave")
        KEYS["dave"] = c.create_key("dave")
        wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=KEYS["dave"])[0] == 200, 15)
        put("dave", "x", "dave-x")
        st, body, _ = api("dave", "DELETE", "/actions/x")
        check("dave deletes x", st == 200, (st, body))
        mark = c.etcd("/v3/kv/range", {"key": c._b64("/gust/versions/dave/x")})
        check("the delete left x's version mark", mark.get("count") == "1", mark)
        env = c.common_env()
        p = subprocess.run([c.bin("gust"), "admin", "namespace", "delete", "dave"],
                           capture_output=True, text=True, env=env, timeout=60)
        check("gust admin namespace delete dave", p.returncode == 0, p.stderr)
        left = c.etcd("/v3/kv/range", {"key": c._b64("/gust/versions/dave/"),
                                       "range_end": c._b64("/gust/versions/dave0")})
        check("the namespace's version marks went with it", left.get("count") in (None, "0"),
              left)
        left = c.etcd("/v3/kv/range", {"key": c._b64("/gust/versions/alice/"),
                                       "range_end": c._b64("/gust/versions/alice0")})
        check("another namespace's marks stay", left.get("count") not in (None, "0"), left)
finally:
    c.__exit__(None, None, None)
finish()
