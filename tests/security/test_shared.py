"""Shared packages run as the caller (issue 13, point 3), as in OpenWhisk.

alice publishes a package whose action keeps a global list of what it was
given and writes the state cache. bob and carol invoke it directly
(/namespaces/alice/actions/lib/leak) and through their own bindings of the
package, by triggers and rules, and inside sequences. The attacks, each shown
to fail beside the legitimate use of the same feature:

- a global in alice's code carries bob's params into carol's call (one warm
  sandbox served every caller): no sandbox serves two invoking namespaces,
  while bob's own second call still finds his warm sandbox;
- bob's and carol's records and logs land in alice's activation list: they
  are in the caller's list only (the record's "namespace" is the caller's,
  the path annotation still names alice's action), and alice cannot read them;
- the shared action reads and writes alice's state cache for its callers: it
  sees the caller's (GUST_STATE_PREFIX, the keys in Redis), alice's own
  invocation still sees hers;
- one caller's calls of the shared action use up the owner's or another
  caller's limits: they count against that caller's own (erin, with 2 a
  minute, gets 429 on her third; alice and bob still run);
- a web action keeps running as its owner (OpenWhisk's rule), as before.
One invoker, so that every call of a caller lands on the same warm pool."""
import json

from cluster import Cluster, wait_until
from gtest import case, check, finish

LEAK = r'''
import os
import gust_state as state
seen = []
def main(a):
    before = list(seen)
    seen.append(a.get("secret", ""))
    print("secret=" + a.get("secret", ""))
    state.set("marker", a.get("secret", ""))
    return {"before": before, "ns": os.environ.get("__OW_NAMESPACE"),
            "action": os.environ.get("__OW_ACTION_NAME"),
            "prefix": os.environ.get("GUST_STATE_PREFIX"),
            "marker": state.get("marker")}
'''

c = Cluster("shared", invokers=1).__enter__()
try:
    KEYS = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        KEYS[ns] = c.create_key(ns)
    wait_until(lambda: all(c.api("GET", "/api/v1/namespaces", auth=k)[0] == 200
                           for k in KEYS.values()), timeout=15)

    def api(who, method, path, body=None, **kw):
        return c.api(method, "/api/v1/namespaces" + path, body, KEYS[who], **kw)

    def call(who, path, params, result=True):
        q = "blocking=true&result=true" if result else "blocking=true"
        return api(who, "POST", "%s?%s" % (path, q), params)

    def record(who, ns, aid):
        st, body, _ = api(who, "GET", "/%s/activations/%s" % (ns, aid))
        return body if st == 200 else None

    def listed(who, ns, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        st, body, _ = api(who, "GET", "/%s/activations?limit=200&%s" % (ns, qs))
        assert st == 200, (st, body)
        return [a["activationId"] for a in body]

    st, body, _ = api("alice", "PUT", "/_/packages/lib", {"publish": True})
    assert st == 200, (st, body)
    st, body, _ = api("alice", "PUT", "/_/actions/lib/leak",
                      {"exec": {"kind": "python:3", "code": LEAK}})
    assert st == 200, (st, body)
    for who in ("bob", "carol"):
        st, body, _ = api(who, "PUT", "/_/packages/shared",
                          {"binding": {"namespace": "alice", "name": "lib"}})
        assert st == 200, (who, st, body)

    DIRECT = "/alice/actions/lib/leak"
    BOUND = "/_/actions/shared/leak"

    @case
    def globals_do_not_cross_callers():
        st, b1, _ = call("bob", DIRECT, {"secret": "bob-1"})
        check("bob invokes alice's shared action directly", st == 200 and b1["before"] == [],
              (st, b1))
        st, b2, _ = call("bob", DIRECT, {"secret": "bob-2"})
        # the legitimate warm reuse: bob's second call finds bob's sandbox
        check("bob's second call is warm in bob's own sandbox",
              st == 200 and b2["before"] == ["bob-1"], (st, b2))
        st, cd, _ = call("carol", DIRECT, {"secret": "carol-1"})
        check("carol's direct call sees none of bob's params",
              st == 200 and not any(s.startswith("bob") for s in cd["before"]), (st, cd))
        st, cb, _ = call("carol", BOUND, {"secret": "carol-2"})
        check("carol's call through her binding sees none of bob's params",
              st == 200 and not any(s.startswith("bob") for s in cb["before"]), (st, cb))
        check("carol's calls share carol's sandbox (direct and bound are one action)",
              cb.get("before") == ["carol-1"], cb)
        st, bb, _ = call("bob", BOUND, {"secret": "bob-3"})
        check("bob's call through his binding sees only bob's params",
              st == 200 and bb["before"] == ["bob-1", "bob-2"], (st, bb))
        st, al, _ = call("alice", "/_/actions/lib/leak", {"secret": "alice-1"})
        check("alice's own call sees neither caller's params",
              st == 200 and al["before"] == [], (st, al))

    @case
    def only_published_actions_are_invocable_by_others():
        st, body, _ = api("alice", "PUT", "/_/packages/private", {})
        assert st == 200, (st, body)
        st, body, _ = api("alice", "PUT", "/_/actions/private/x",
                          {"exec": {"kind": "python:3", "code": LEAK}})
        assert st == 200, (st, body)
        st, body, _ = api("alice", "PUT", "/_/actions/solo",
                          {"exec": {"kind": "python:3", "code": LEAK}})
        assert st == 200, (st, body)
        st, _, _ = call("bob", "/alice/actions/private/x", {})
        check("bob cannot invoke an action of alice's unpublished package", st == 404, st)
        st, _, _ = call("bob", "/alice/actions/solo", {})
        check("bob cannot invoke alice's default-package action", st == 403, st)
        st, _, _ = api("bob", "GET", DIRECT)
        check("bob cannot read alice's shared action by her path", st == 403, st)
        st, _, _ = api("bob", "PUT", DIRECT + "?overwrite=true",
                       {"exec": {"kind": "python:3", "code": "def main(a): return {}"}})
        check("bob cannot overwrite alice's shared action", st == 403, st)
        st, _, _ = api("bob", "DELETE", DIRECT)
        check("bob cannot delete alice's shared action", st == 403, st)
        st, _, _ = api("bob", "POST", "/alice/triggers/t", {})
        check("bob cannot fire alice's triggers", st == 403, st)
        st, _, _ = api("bob", "GET", "/alice/activations")
        check("bob cannot list alice's activations", st == 403, st)
        st, body, _ = call("alice", "/_/actions/private/x", {"secret": "alice-private"})
        check("alice invokes her private package's action", st == 200 and body["ns"] == "alice",
              (st, body))

    @case
    def records_and_logs_belong_to_the_caller():
        st, rb, _ = call("bob", DIRECT, {"secret": "bob-rec"}, result=False)
        check("bob's blocking call answers with a record", st == 200 and "activationId" in rb,
              (st, rb))
        st, rc, _ = call("carol", BOUND, {"secret": "carol-rec"}, result=False)
        check("carol's blocking call answers with a record", st == 200 and "activationId" in rc,
              (st, rc))
        bid, cid = rb["activationId"], rc["activationId"]
        check("the answer's namespace is the caller's (bob)", rb.get("namespace") == "bob", rb)
        check("the answer's namespace is the caller's (carol)", rc.get("namespace") == "carol",
              rc)
        got_b = wait_until(lambda: record("bob", "_", bid), timeout=15)
        got_c = wait_until(lambda: record("carol", "_", cid), timeout=15)
        check("bob reads his record", got_b and got_b["namespace"] == "bob", got_b)
        check("carol reads her record", got_c and got_c["namespace"] == "carol", got_c)
        path = [a["value"] for a in (got_b or {}).get("annotations", []) if a["key"] == "path"]
        check("the record's path still names alice's action", path == ["alice/lib/leak"], path)
        check("bob's logs are bob's", got_b and got_b["logs"] and
              got_b["logs"][-1].endswith("secret=bob-rec"), got_b and got_b["logs"])
        st, lg, _ = api("bob", "GET", "/_/activations/%s/logs" % bid)
        check("bob reads his logs", st == 200 and lg["logs"][-1].endswith("secret=bob-rec"),
              (st, lg))
        check("bob's list has his call", wait_until(lambda: bid in listed("bob", "_"), 15))
        check("carol's list has her call and not bob's",
              cid in listed("carol", "_") and bid not in listed("carol", "_"))
        check("bob's list has not carol's call", cid not in listed("bob", "_"))
        a_list = listed("alice", "_")
        check("alice's list has none of her callers' activations",
              bid not in a_list and cid not in a_list, a_list)
        a_named = listed("alice", "_", name="lib/leak")
        check("alice's list filtered by the action has none of them either",
              bid not in a_named and cid not in a_named, a_named)
        check("alice cannot read bob's record", record("alice", "_", bid) is None)
        st, _, _ = api("alice", "GET", "/_/activations/%s/logs" % cid)
        check("alice cannot read carol's logs", st == 404, st)
        st, _, _ = api("alice", "GET", "/_/activations/%s/result" % bid)
        check("alice cannot read bob's result", st == 404, st)
        check("carol cannot read bob's record", record("carol", "_", bid) is None)
        # legitimate: the owner's own calls are in the owner's list
        st, ra, _ = call("alice", "/_/actions/lib/leak", {"secret": "alice-rec"}, result=False)
        aid = ra["activationId"]
        check("alice's own call is in alice's list",
              wait_until(lambda: aid in listed("alice", "_"), 15) and
              aid not in listed("bob", "_"))

    @case
    def state_cache_is_the_callers():
        st, rb, _ = call("bob", DIRECT, {"secret": "bob-state"})
        check("bob's call sees bob's state prefix",
              st == 200 and rb["prefix"] == "gust:state:bob:" and rb["marker"] == "bob-state",
              (st, rb))
        st, rc, _ = call("carol", BOUND, {"secret": "carol-state"})
        check("carol's call sees carol's state prefix",
              st == 200 and rc["prefix"] == "gust:state:carol:" and
              rc["marker"] == "carol-state", (st, rc))
        check("bob's write is in bob's keys", c.redis("GET", "gust:state:bob:marker") ==
              b"bob-state", c.redis("GET", "gust:state:bob:marker"))
        check("carol's write is in carol's keys", c.redis("GET", "gust:state:carol:marker") ==
              b"carol-state")
        st, ra, _ = call("alice", "/_/actions/lib/leak", {"secret": "alice-state"})
        check("alice's own call uses alice's state", st == 200 and
              ra["prefix"] == "gust:state:alice:" and ra["marker"] == "alice-state", (st, ra))
        check("bob's value did not reach alice's keys",
              c.redis("GET", "gust:state:alice:marker") == b"alice-state")
        check("alice's value did not overwrite bob's",
              c.redis("GET", "gust:state:bob:marker") == b"bob-state")

    @case
    def environment_names_the_caller():
        st, rb, _ = call("bob", BOUND, {"secret": "bob-env"})
        check("__OW_NAMESPACE is the caller's", st == 200 and rb["ns"] == "bob", (st, rb))
        check("__OW_ACTION_NAME still names the owner's action",
              rb.get("action") == "/alice/lib/leak", rb)

    @case
    def rules_run_as_the_trigger_owner():
        st, body, _ = api("bob", "PUT", "/_/triggers/tb", {})
        check("bob's trigger", st == 200, (st, body))
        st, body, _ = api("bob", "PUT", "/_/rules/rb",
                          {"trigger": "/_/tb", "action": "/_/shared/leak"})
        check("bob's rule to alice's action through his binding",
              st == 200 and body["status"] == "active", (st, body))
        st, body, _ = api("bob", "POST", "/_/triggers/tb", {"secret": "bob-fire"})
        check("bob fires", st == 202 and "activationId" in body, (st, body))
        tid = body.get("activationId")
        trec = wait_until(lambda: record("bob", "_", tid), timeout=15)
        check("the trigger's record lists the caused activation", trec and len(trec["logs"]) == 1,
              trec)
        if not trec:
            return
        caused = json.loads(trec["logs"][0])["activationId"]
        arec = wait_until(lambda: record("bob", "_", caused), timeout=20)
        check("the rule's activation is bob's record",
              arec and arec["namespace"] == "bob" and arec["response"]["success"], arec)
        res = arec["response"]["result"] if arec else {}
        check("the rule's activation saw no other caller's params and bob's state",
              not any(not s.startswith("bob") for s in res.get("before", [])) and
              res.get("prefix") == "gust:state:bob:", res)
        check("alice sees none of the rule's activation",
              record("alice", "_", caused) is None and caused not in listed("alice", "_"))

    @case
    def sequences_run_as_the_caller():
        st, body, _ = api("bob", "PUT", "/_/actions/seq",
                          {"exec": {"kind": "sequence", "components": ["/alice/lib/leak"]}})
        check("bob's sequence of alice's shared action", st == 200, (st, body))
        st, body, _ = call("bob", "/_/actions/seq", {"secret": "bob-seq"}, result=False)
        check("bob invokes his sequence", st == 200 and body["response"]["success"], (st, body))
        sid = body.get("activationId")
        comp = body.get("logs", [None])[0] if body else None
        check("the sequence record is bob's", body and body.get("namespace") == "bob", body)
        crec = wait_until(lambda: record("bob", "_", comp), timeout=15) if comp else None
        check("the component's record is bob's", crec and crec["namespace"] == "bob", crec)
        res = crec["response"]["result"] if crec else {}
        check("the component saw only bob's params",
              all(s.startswith("bob") for s in res.get("before", [])), res)
        a_list = listed("alice", "_")
        check("alice sees neither the sequence nor its component",
              sid not in a_list and comp not in a_list, a_list)
        # alice's own sequence in her shared package, invoked by carol
        st, body, _ = api("alice", "PUT", "/_/actions/lib/seq",
                          {"exec": {"kind": "sequence", "components": ["/alice/lib/leak"]}})
        check("alice's shared sequence", st == 200, (st, body))
        st, body, _ = call("carol", "/alice/actions/lib/seq", {"secret": "carol-seq"},
                           result=False)
        check("carol invokes alice's shared sequence",
              st == 200 and body["response"]["success"] and body["namespace"] == "carol",
              (st, body))
        res = body["response"]["result"] if st == 200 else {}
        check("alice's sequence as carol saw none of bob's params",
              not any(s.startswith("bob") for s in res.get("before", [])), res)
        sid = body.get("activationId") if st == 200 else None
        check("carol's list has alice's sequence she ran, alice's has not",
              wait_until(lambda: sid in listed("carol", "_"), 15) and
              sid not in listed("alice", "_"))

    @case
    def limits_are_the_callers():
        c.create_namespace("erin", {"concurrentInvocations": 100, "invocationsPerMinute": 2,
                                    "firesPerMinute": 100})
        KEYS["erin"] = c.create_key("erin")
        wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=KEYS["erin"])[0] == 200, 15)
        got = [call("erin", DIRECT, {"secret": "erin-%d" % i})[0] for i in range(3)]
        check("erin's calls of alice's action count against erin's limit (2 a minute)",
              got[:2] == [200, 200] and got[2] == 429, got)
        st, body, _ = call("alice", "/_/actions/lib/leak", {"secret": "alice-limit"})
        check("alice's own calls are not charged with erin's", st == 200, (st, body))
        st, body, _ = call("bob", DIRECT, {"secret": "bob-limit"})
        check("bob's calls are not charged with erin's", st == 200, (st, body))

    @case
    def web_actions_run_as_the_owner():
        st, body, _ = api("alice", "PUT", "/_/actions/lib/web",
                          {"exec": {"kind": "python:3", "code": LEAK},
                           "annotations": [{"key": "web-export", "value": True}]})
        check("alice's web action", st == 200, (st, body))
        st, body, _ = c.http("GET", c.api_host + "/api/v1/web/alice/lib/web.json?secret=anon")
        check("a web action runs as its owner, as in OpenWhisk",
              st == 200 and body["ns"] == "alice" and body["prefix"] == "gust:state:alice:",
              (st, body))
        check("anonymous calls find no caller's params in the owner's web sandbox",
              st == 200 and not any(s.startswith(("bob", "carol")) for s in body["before"]),
              body)
finally:
    c.__exit__(None, None, None)
finish()
