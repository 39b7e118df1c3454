"""The OpenWhisk REST API end to end, at the HTTP level: namespaces and hashed
keys, actions (zip, sequences, packages), invoke semantics, packages and
bindings, triggers and rules, activations, web actions, limits, and every 4xx
status reached with a real bad input while the gateway keeps serving."""
import base64
import io
import json
import os
import socket
import subprocess
import time
import zipfile

from cluster import Cluster, wait_until
from gtest import case, check, finish

c = Cluster("api").__enter__()
GUST = c.bin("gust")


def gust(*args, env_extra=None):
    env = dict(os.environ)
    env["GUST_ETCD"] = c.etcd_url
    env["GUST_APIHOST"] = c.api_host
    env["GUST_CONFIG_FILE"] = os.path.join(c.dir, "gust-config")
    if env_extra:
        env.update(env_extra)
    p = subprocess.run([GUST] + list(args), capture_output=True, text=True, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


try:
    rc, out, err = gust("admin", "namespace", "create", "guest")
    assert rc == 0, err
    rc, AUTH, err = gust("admin", "key", "create", "guest")
    AUTH = AUTH.strip()
    gust("admin", "namespace", "create", "other")
    rc, OTHER, _ = gust("admin", "key", "create", "other")
    OTHER = OTHER.strip()
    wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=AUTH)[0] == 200, timeout=10)

    def api(method, path, body=None, auth=AUTH, **kw):
        return c.api(method, "/api/v1/namespaces/_" + path, body, auth, **kw)

    def put_action(name, code, kind="python:3", overwrite=False, **extra):
        body = {"exec": {"kind": kind, "code": code}}
        body.update(extra)
        return api("PUT", "/actions/%s%s" % (name, "?overwrite=true" if overwrite else ""), body)

    def invoke(name, params=None, q="blocking=true&result=true", auth=AUTH):
        return api("POST", "/actions/%s?%s" % (name, q), params or {}, auth=auth)

    @case
    def keys_and_namespaces():
        raw = c.etcd("/v3/kv/range", {"key": c._b64("/gust/keys/" + AUTH.split(":")[0])})
        rec = json.loads(base64.b64decode(raw["kvs"][0]["value"]))
        check("key stored salted and hashed", "hash" in rec and "salt" in rec and "key" not in rec
              and AUTH.split(":")[1] not in json.dumps(rec), rec)
        st, body, _ = c.api("GET", "/api/v1/namespaces", auth=AUTH)
        check("namespaces lists the caller's", st == 200 and body == ["guest"], (st, body))
        st, body, _ = c.api("GET", "/api/v1/namespaces", auth=AUTH.split(":")[0] + ":wrongwrongwrong")
        check("wrong secret is 401", st == 401 and body.get("code"), (st, body))
        rc, out, _ = gust("admin", "key", "create", "guest")
        k2 = out.strip()
        time.sleep(0.3)
        check("second key works", c.api("GET", "/api/v1/namespaces", auth=k2)[0] == 200)
        rc, out, err = gust("admin", "key", "revoke", k2.split(":")[0])
        check("revoke ok", rc == 0, err)
        check("revoked key is 401", wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=k2)[0] == 401, 5))
        rc, out, err = gust("admin", "key", "create", "nope")
        check("key for unknown namespace fails with one line", rc != 0 and err.count("\n") == 1, err)

    @case
    def actions_crud():
        st, body, _ = put_action("a1", "def main(a):\n    return {'x': a.get('x', 0)}\n",
                                 parameters=[{"key": "x", "value": 1}], annotations=[{"key": "k", "value": "v"}],
                                 limits={"timeout": 5000, "memory": 128})
        check("create", st == 200 and body["version"] == "0.0.1" and body["limits"]["timeout"] == 5000, (st, body))
        st, body, _ = api("PUT", "/actions/a1?overwrite=true", {"parameters": [{"key": "x", "value": 2}]})
        check("partial update merges", st == 200 and body["version"] == "0.0.2" and body["limits"]["memory"] == 128
              and body["annotations"] == [{"key": "k", "value": "v"}], (st, body))
        st, body, _ = api("GET", "/actions/a1?code=false")
        check("get code=false", st == 200 and "code" not in body["exec"] and body["namespace"] == "guest", (st, body))
        st, body, _ = invoke("a1")
        check("defaults after update", st == 200 and body == {"x": 2}, (st, body))
        for i in range(3):
            put_action("l%d" % i, "def main(a):\n    return a\n")
        st, body, _ = api("GET", "/actions?limit=2&skip=1")
        check("list skip/limit", st == 200 and len(body) == 2, (st, body))
        st, body, _ = api("GET", "/actions?count=true")
        check("list count", st == 200 and body["actions"] >= 4, (st, body))
        for lim in ({"timeout": 99}, {"timeout": 300001}, {"memory": 127}, {"memory": 513}, {"logs": 11}, {"concurrency": 0}):
            st, body, _ = put_action("badlim", "x", limits=lim)
            check("limit %s is 400" % lim, st == 400 and body.get("code") == "EINVAL", (st, body))
        st, body, _ = put_action("kinddef", "def main(a):\n    return {'k': 1}\n", kind="python:default")
        check("python:default", st == 200 and body["exec"]["kind"] == "python:3", (st, body))

    @case
    def zip_actions():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("__main__.py", "def main(a):\n    return {'zip': 'py'}\n")
        code = base64.b64encode(buf.getvalue()).decode()
        st, body, _ = put_action("zpy", code)
        check("python zip detected without binary flag", st == 200 and body["exec"]["binary"] is True, (st, body))
        st, body, _ = invoke("zpy")
        check("python zip runs __main__.py", st == 200 and body == {"zip": "py"}, (st, body))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("package.json", json.dumps({"main": "lib/x.js"}))
            z.writestr("lib/x.js", "exports.main = () => ({zip: 'node'});\n")
        st, body, _ = put_action("zjs", base64.b64encode(buf.getvalue()).decode(), kind="nodejs:20")
        st, body, _ = invoke("zjs")
        check("node zip runs package.json main", st == 200 and body == {"zip": "node"}, (st, body))

    @case
    def invoke_semantics():
        put_action("env", "import os\ndef main(a):\n    return {k: os.environ.get(k) for k in ['__OW_ACTIVATION_ID','__OW_DEADLINE','__OW_NAMESPACE','__OW_ACTION_NAME','__OW_ACTION_VERSION','__OW_API_HOST']}\n")
        st, body, h = invoke("env")
        check("__OW_ env", st == 200 and body["__OW_NAMESPACE"] == "guest" and body["__OW_ACTION_NAME"] == "/guest/env"
              and body["__OW_ACTIVATION_ID"] == h.get("x-openwhisk-activation-id") and body["__OW_DEADLINE"], (st, body))
        put_action("sleepy", "import time\ndef main(a):\n    time.sleep(a.get('s', 2))\n    return {'slept': True}\n")
        st, body, h = invoke("sleepy", {"s": 2}, "blocking=true&timeout=300")
        check("blocking call outliving the wait is 202", st == 202 and len(body.get("activationId", "")) == 32, (st, body))
        aid = body.get("activationId")
        rec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % aid)), 15)
        check("its record arrives later", rec and rec["response"]["result"] == {"slept": True}, rec)
        put_action("fail", "def main(a):\n    return {'error': 'app says no'}\n")
        st, body, _ = invoke("fail", q="blocking=true")
        check("application error is 502 with the record", st == 502 and body["response"]["statusCode"] == 1
              and body["response"]["result"]["error"] == "app says no", (st, body))
        put_action("crash", "def main(a):\n    raise Exception('boom')\n")
        st, body, _ = invoke("crash", q="blocking=true")
        check("an uncaught exception is 502 with its record", st == 502 and body["response"]["statusCode"] in (1, 2)
              and not body["response"]["success"], (st, body))
        st, body, _ = api("POST", "/actions/env?blocking=true", b"{\"x\": \"" + b"y" * (1024 * 1024) + b"\"}")
        check("payload over 1 MB is 413", st == 413, (st, body))
        st, body, _ = invoke("env", q="blocking=false")
        check("non-blocking 202", st == 202 and "activationId" in body, (st, body))
        st, body, _ = invoke("env", q="blocking=true&timeout=abc")
        check("bad timeout is 400", st == 400, (st, body))

    @case
    def packages():
        st, body, _ = api("PUT", "/packages/p1", {"parameters": [{"key": "a", "value": "pkg"}, {"key": "b", "value": "pkg"}], "publish": True})
        check("package create", st == 200 and body["name"] == "p1", (st, body))
        st, body, _ = put_action("p1/echo", "def main(a):\n    return a\n", parameters=[{"key": "b", "value": "act"}, {"key": "c", "value": "act"}])
        check("action in package", st == 200 and body["namespace"] == "guest/p1", (st, body))
        st, body, _ = invoke("p1/echo", {"c": "inv"})
        check("params merge package, action, invoke", st == 200 and body == {"a": "pkg", "b": "act", "c": "inv"}, (st, body))
        st, body, _ = api("GET", "/packages/p1")
        check("package get lists actions", st == 200 and [a["name"] for a in body["actions"]] == ["echo"], (st, body))
        st, body, _ = api("DELETE", "/packages/p1")
        check("delete non-empty package is 409", st == 409, (st, body))
        st, body, _ = api("PUT", "/packages/nop/x", {"exec": {"kind": "python:3", "code": "x"}})
        st, body, _ = put_action("nop/x", "def main(a):\n    return a\n")
        check("action in missing package is 404", st == 404, (st, body))
        # a binding from another namespace to the shared package
        st, body, _ = c.api("PUT", "/api/v1/namespaces/_/packages/b1", {"binding": {"namespace": "guest", "name": "p1"},
                                                                         "parameters": [{"key": "a", "value": "binding"}]}, OTHER)
        check("binding create", st == 200 and body["binding"] == {"namespace": "guest", "name": "p1"}, (st, body))
        st, body, _ = c.api("POST", "/api/v1/namespaces/_/actions/b1/echo?blocking=true&result=true", {}, OTHER)
        check("invoke through binding", st == 200 and body == {"a": "binding", "b": "act", "c": "act"}, (st, body))
        st, body, _ = c.api("PUT", "/api/v1/namespaces/_/packages/b2", {"binding": {"namespace": "guest", "name": "nope"}}, OTHER)
        check("binding to a missing package is 404", st == 404, (st, body))
        st, body, _ = api("DELETE", "/actions/p1/echo")
        st, body, _ = api("DELETE", "/packages/p1")
        check("delete empty package", st == 200, (st, body))

    @case
    def sequences():
        put_action("s1", "def main(a):\n    return {'n': a.get('n', 0) + 1}\n")
        put_action("s2", "def main(a):\n    return {'n': a['n'] * 10}\n")
        st, body, _ = api("PUT", "/actions/seq", {"exec": {"kind": "sequence", "components": ["/_/s1", "s2", "/guest/s1"]}})
        check("sequence create", st == 200 and body["exec"]["components"] == ["/guest/s1", "/guest/s2", "/guest/s1"], (st, body))
        st, body, h = invoke("seq", {"n": 1})
        check("sequence result", st == 200 and body == {"n": 21}, (st, body))
        sid = h.get("x-openwhisk-activation-id")
        rec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % sid)), 10)
        check("sequence record lists component activations", rec and len(rec["logs"]) == 3, rec)
        if rec:
            c0 = api("GET", "/activations/%s" % rec["logs"][0])[1]
            check("component cause is the sequence", c0.get("cause") == sid, c0)
        st, body, _ = api("PUT", "/actions/seqbad", {"exec": {"kind": "sequence", "components": ["nope"]}})
        check("sequence with missing component is 400", st == 400, (st, body))
        st, body, _ = api("PUT", "/actions/seqbig", {"exec": {"kind": "sequence", "components": ["s1"] * 51}})
        check("sequence over 50 is 400", st == 400, (st, body))
        put_action("sfail", "def main(a):\n    return {'error': 'stop'}\n")
        api("PUT", "/actions/seqf", {"exec": {"kind": "sequence", "components": ["s1", "sfail", "s2"]}})
        st, body, _ = invoke("seqf", {"n": 1}, q="blocking=true")
        check("failing sequence is 502 and stops", st == 502 and len(body["logs"]) == 2, (st, body))

    @case
    def triggers_rules():
        put_action("tact", "def main(a):\n    return a\n", parameters=[{"key": "d", "value": "act"}])
        st, body, _ = api("PUT", "/triggers/t1", {"parameters": [{"key": "t", "value": "trig"}, {"key": "f", "value": "trig"}]})
        check("trigger create", st == 200, (st, body))
        st, body, _ = api("POST", "/triggers/t1", {"f": "fire"})
        check("fire without rules is 204", st == 204, (st, body))
        st, body, _ = api("PUT", "/rules/r1", {"trigger": "/_/t1", "action": "/_/tact"})
        check("rule create active", st == 200 and body["status"] == "active", (st, body))
        st, body, _ = api("POST", "/triggers/t1", {"f": "fire"})
        check("fire is 202 with an id", st == 202 and "activationId" in body, (st, body))
        tid = body.get("activationId")
        rec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % tid)), 10)
        check("trigger record lists caused activations", rec and len(rec["logs"]) == 1, rec)
        if rec:
            caused = json.loads(rec["logs"][0])["activationId"]
            arec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % caused)), 15)
            check("rule's action got trigger then fire params", arec and arec["response"]["result"] == {"d": "act", "t": "trig", "f": "fire"}, arec)
        st, body, _ = api("POST", "/rules/r1", {"status": "inactive"})
        check("disable rule", st == 200, (st, body))
        st, body, _ = api("POST", "/triggers/t1", {})
        check("fire with the rule disabled is 204", st == 204, (st, body))
        # A sequence as the rule's action: started by the fire, caused by it.
        put_action("tadd", "def main(a):\n    a['seq'] = True\n    return a\n")
        api("PUT", "/actions/tseq", {"exec": {"kind": "sequence", "components": ["tact", "tadd"]}})
        st, body, _ = api("PUT", "/rules/r3", {"trigger": "/_/t1", "action": "/_/tseq"})
        check("rule to a sequence", st == 200 and body["status"] == "active", (st, body))
        st, body, _ = api("POST", "/triggers/t1", {"f": "seqfire"})
        check("fire with a sequence rule is 202", st == 202 and "activationId" in body, (st, body))
        tid = body.get("activationId")
        rec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % tid)), 10)
        entry = json.loads(rec["logs"][0]) if rec and rec.get("logs") else {}
        check("trigger record: the sequence was started", entry.get("success") is True and "activationId" in entry, rec)
        srec = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(api("GET", "/activations/%s" % entry.get("activationId"))), 15) if entry.get("activationId") else None
        check("the sequence ran both components with the fire's params",
              srec and srec["response"]["result"] == {"d": "act", "t": "trig", "f": "seqfire", "seq": True} and len(srec["logs"]) == 2, srec)
        check("the sequence's cause is the fire", srec and srec.get("cause") == tid, srec)
        api("DELETE", "/rules/r3")
        st, body, _ = api("POST", "/rules/r1", {"status": "sideways"})
        check("bad rule status is 400", st == 400, (st, body))
        st, body, _ = api("PUT", "/rules/r2", {"trigger": "nope", "action": "tact"})
        check("rule with missing trigger is 404", st == 404, (st, body))
        st, body, _ = api("GET", "/triggers/t1")
        check("trigger get shows its rules", st == 200 and "guest/r1" in body["rules"], (st, body))
        st, body, _ = api("DELETE", "/rules/r1")
        check("rule delete", st == 200, (st, body))
        st, body, _ = api("DELETE", "/triggers/t1")
        check("trigger delete", st == 200, (st, body))

    @case
    def activations():
        put_action("act1", "def main(a):\n    print('line', a.get('i'))\n    return {'i': a.get('i')}\n")
        t0 = int(time.time() * 1000)
        for i in range(3):
            invoke("act1", {"i": i})
        wait_until(lambda: api("GET", "/activations?name=act1&count=true")[1].get("activations") == 3, 10)
        st, body, _ = api("GET", "/activations?name=act1&limit=2")
        check("list by name with limit", st == 200 and len(body) == 2 and all(a["name"] == "act1" for a in body), (st, body))
        st, body, _ = api("GET", "/activations?name=act1&docs=true&skip=1")
        check("docs=true has responses", st == 200 and len(body) == 2 and "response" in body[0], (st, body))
        st, body, _ = api("GET", "/activations?since=%d&upto=%d" % (t0 + 3600000, t0 + 7200000))
        check("since/upto window", st == 200 and body == [], (st, body))
        aid = api("GET", "/activations?name=act1&limit=1")[1][0]["activationId"]
        st, body, _ = api("GET", "/activations/%s/logs" % aid)
        check("logs", st == 200 and any("line" in l for l in body["logs"]), (st, body))
        st, body, _ = api("GET", "/activations/%s/result" % aid)
        check("result", st == 200 and body["success"] is True, (st, body))
        st, body, _ = api("GET", "/activations/%s" % aid)
        check("record shape", st == 200 and {"start", "end", "duration", "annotations", "response"} <= set(body), body)
        st, body, _ = api("GET", "/activations/0123456789abcdef0123456789abcdef")
        check("unknown activation is 404", st == 404, (st, body))
        st, body, _ = api("GET", "/activations?limit=abc")
        check("bad limit is 400", st == 400, (st, body))

    @case
    def web_actions():
        code = ("def main(a):\n"
                "    if a.get('__ow_path','').startswith('/raw'):\n"
                "        return {'statusCode': 201, 'headers': {'X-Y': 'z', 'Content-Type': 'text/plain'}, 'body': 'hi ' + a.get('name','')}\n"
                "    return {'html': '<b>' + a.get('name','') + '</b>', 'text': 'plain', 'm': a['__ow_method'], 'p': a['__ow_path'], 'name': a.get('name')}\n")
        put_action("web1", code, annotations=[{"key": "web-export", "value": True}])
        put_action("noweb", code)
        base = c.api_host + "/api/v1/web/guest/default/"
        st, body, h = c.http("GET", base + "web1.json?name=x")
        check("web .json without auth", st == 200 and body["name"] == "x" and body["m"] == "get", (st, body))
        st, body, h = c.http("GET", base + "web1.html?name=x")
        check("web .html", st == 200 and body == "<b>x</b>" and h["Content-Type"].startswith("text/html"), (st, body, h))
        st, body, h = c.http("GET", base + "web1.text")
        check("web .text", st == 200 and body == "plain", (st, body))
        st, body, h = c.http("POST", base + "web1.http/raw/more", {"name": "post"})
        check("web .http statusCode/headers/body", st == 201 and body == "hi post" and h.get("X-Y") == "z", (st, body, h))
        st, body, _ = c.http("GET", base + "noweb.json")
        check("not exported is 404", st == 404, (st, body))
        put_action("webauth", code, annotations=[{"key": "web-export", "value": True}, {"key": "require-whisk-auth", "value": "s3cret"}])
        st, body, _ = c.http("GET", base + "webauth.json")
        check("require-whisk-auth without the header is 401", st == 401, (st, body))
        st, body, _ = c.http("GET", base + "webauth.json", headers={"X-Require-Whisk-Auth": "s3cret"})
        check("require-whisk-auth with the header", st == 200, (st, body))

    @case
    def fire_limit():
        rc, out, err = gust("admin", "namespace", "limits", "guest", "--fires-per-minute", "2")
        check("set fires per minute", rc == 0, err)
        time.sleep(0.5)
        api("PUT", "/triggers/lim", {})
        sts = [api("POST", "/triggers/lim", {})[0] for _ in range(3)]
        st, body, _ = api("POST", "/triggers/lim", {})
        check("over fires per minute is 429 with a clear message", st == 429 and "per minute" in body["error"], (sts, st, body))
        rc, out, err = gust("admin", "namespace", "limits", "guest", "--json")
        check("limits shown", rc == 0 and json.loads(out)["firesPerMinute"] == 2, (out, err))
        gust("admin", "namespace", "limits", "guest", "--fires-per-minute", "60")
        time.sleep(0.5)

    @case
    def cli():
        env = {"GUST_AUTH": AUTH}
        f = os.path.join(c.dir, "cli_hello.py")
        with open(f, "w") as fh:
            fh.write("def main(a):\n    print('cli log')\n    return {'hi': a.get('name')}\n")
        rc, out, err = gust("action", "create", "clihello", f, env_extra=env)
        check("cli action create", rc == 0 and "ok: created" in out, (rc, out, err))
        rc, out, err = gust("action", "invoke", "clihello", "--param", "name", "gust", "--result", env_extra=env)
        check("cli invoke --result", rc == 0 and json.loads(out) == {"hi": "gust"}, (rc, out, err))
        rc, out, err = gust("action", "list", env_extra=env)
        check("cli action list table", rc == 0 and out.startswith("NAME") and "/guest/clihello" in out, (rc, out, err))
        rc, out, err = gust("package", "create", "clipkg", "-p", "a", "1", env_extra=env)
        check("cli package create", rc == 0, (rc, out, err))
        rc, out, err = gust("trigger", "create", "clitrig", env_extra=env)
        rc2, out2, err2 = gust("rule", "create", "clirule", "clitrig", "clihello", env_extra=env)
        check("cli trigger and rule create", rc == 0 and rc2 == 0, (err, err2))
        rc, out, err = gust("trigger", "fire", "clitrig", "-p", "name", "fired", env_extra=env)
        check("cli trigger fire", rc == 0 and "with id" in out, (rc, out, err))
        rc, out, err = gust("rule", "disable", "clirule", env_extra=env)
        check("cli rule disable", rc == 0, (rc, out, err))
        ok = wait_until(lambda: "clihello" in gust("activation", "list", "clihello", "--json", env_extra=env)[1], 10)
        check("cli activation list --json", ok)
        rc, out, err = gust("activation", "poll", "clihello", "--exit", "2", "--since", "1", env_extra=env)
        check("cli activation poll shows logs", rc == 0 and "cli log" in out, (rc, out, err))
        rc, out, err = gust("namespace", "list", env_extra=env)
        check("cli namespace list", rc == 0 and "guest" in out, (rc, out, err))
        rc, out, err = gust("action", "get", "nope", env_extra=env)
        check("cli error is one line on stderr, exit 1", rc == 1 and err.count("\n") == 1 and err.startswith("error:"), (rc, err))
        rc, out, err = gust("action", "frobnicate", env_extra=env)
        check("cli usage error exits 2", rc == 2, (rc, err))

    @case
    def status_codes():
        st, body, _ = c.api("GET", "/api/v1/namespaces/_/actions")
        check("401 without credentials", st == 401 and body["code"], (st, body))
        st, body, _ = c.api("GET", "/api/v1/namespaces/other/actions", auth=AUTH)
        check("403 for another namespace", st == 403, (st, body))
        st, body, _ = api("GET", "/nothing")
        check("404 unknown collection", st == 404, (st, body))
        st, body, _ = api("PATCH", "/actions/a1")
        check("405 method", st == 405, (st, body))
        st, body, _ = api("PUT", "/actions/a1", {"exec": {"kind": "python:3", "code": "x"}})
        check("409 exists", st == 409, (st, body))
        st, body, _ = api("PUT", "/actions/bad%20name%20", {"exec": {"kind": "python:3", "code": "x"}})
        check("400 bad name", st == 400, (st, body))
        st, body, _ = c.http("PUT", c.api_host + "/api/v1/namespaces/_/packages/pp", b"{nope", AUTH)
        check("400 malformed JSON", st == 400, (st, body))
        st, body, _ = api("GET", "/triggers/none")
        check("404 trigger", st == 404, (st, body))
        st, body, _ = api("GET", "/rules/none")
        check("404 rule", st == 404, (st, body))
        st, body, _ = api("GET", "/packages/none")
        check("404 package", st == 404, (st, body))
        s = socket.create_connection(("127.0.0.1", c.gw_port))
        s.sendall(b"PUT /api/v1/namespaces/_/actions/x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")
        s.close()
        st, body, _ = invoke("a1")
        check("gateway keeps serving after bad input", st == 200 and c.procs["gateway"].alive(), (st, body))
finally:
    c.__exit__(None, None, None)
finish()
