"""Web actions and shared packages between tenants (issue 13, point 5).

alice, bob and carol each have a namespace and a key. Attacks: an anonymous
web request overriding a parameter the owner made final; calling a web action
that requires a key or a secret without it; a binding that outlives the
publication of the package it binds; reading alice's require-whisk-auth
secret from another namespace. Beside each, the legitimate use still works."""
import json
import urllib.parse

from cluster import Cluster, wait_until
from gtest import case, check, finish

c = Cluster("secweb").__enter__()

try:
    keys = {}
    for ns in ("alice", "bob", "carol"):
        c.create_namespace(ns)
        keys[ns] = c.create_key(ns)
    for ns in keys:
        assert wait_until(lambda: c.api("GET", "/api/v1/namespaces", auth=keys[ns])[0] == 200, 10), ns

    def api(who, method, path, body=None, **kw):
        return c.api(method, "/api/v1/namespaces/_" + path, body, keys[who], **kw)

    def web(ns, path, method="GET", body=None, headers=None, auth=None):
        return c.http(method, c.api_host + "/api/v1/web/%s/%s" % (ns, path), body, auth=auth,
                      headers=headers)

    ECHO = "def main(a):\n    return {k: v for k, v in a.items() if not k.startswith('__ow_')}\n"

    def put_action(who, name, params=(), annotations=(), code=ECHO):
        st, body, _ = api(who, "PUT", "/actions/%s?overwrite=true" % name,
                          {"exec": {"kind": "python:3", "code": code},
                           "parameters": [{"key": k, "value": v} for k, v in params],
                           "annotations": [{"key": k, "value": v} for k, v in annotations]})
        assert st == 200, (name, st, body)
        return body

    WEB = ("web-export", True)
    FINAL = ("final", True)

    @case
    def final_parameters():
        put_action("alice", "greet", params=[("role", "user")], annotations=[WEB, FINAL])
        st, body, _ = web("alice", "default/greet.json?role=admin")
        check("anonymous ?role=admin on a final parameter is 400",
              st == 400 and "not allowed" in body["error"] and "role" in body["error"]
              and body["code"] == "EINVAL", (st, body))
        st, body, _ = web("alice", "default/greet.json", "POST", {"role": "admin"})
        check("a JSON body setting a final parameter is 400", st == 400, (st, body))
        st, body, _ = web("alice", "default/greet.json", "POST", b"role=admin",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        check("a form body does not set role (it stays the owner's)",
              st == 200 and body.get("role") == "user", (st, body))
        st, body, _ = web("alice", "default/greet.json?__ow_method=put")
        check("a request setting a reserved __ow_ property is 400",
              st == 400 and "__ow_method" in body["error"], (st, body))
        st, body, _ = web("alice", "default/greet.json")
        check("the owner's final default applies", st == 200 and body == {"role": "user"}, (st, body))
        st, body, _ = web("alice", "default/greet.json?x=1")
        check("a parameter that is not final can still be passed",
              st == 200 and body == {"role": "user", "x": "1"}, (st, body))
        # OpenWhisk holds an authenticated invoke to final too.
        st, body, _ = api("alice", "POST", "/actions/greet?blocking=true&result=true", {"role": "admin"})
        check("invoke setting a final parameter is 400", st == 400 and "role" in body["error"], (st, body))
        st, body, _ = api("alice", "POST", "/actions/greet?blocking=true&result=true", {"x": 2})
        check("invoke with another parameter runs", st == 200 and body == {"role": "user", "x": 2}, (st, body))
        # Without final, a caller still overrides a default (OpenWhisk's plain web action).
        put_action("alice", "open", params=[("role", "user")], annotations=[WEB])
        st, body, _ = web("alice", "default/open.json?role=admin")
        check("without final the caller's value wins", st == 200 and body == {"role": "admin"}, (st, body))
        # A package's parameters are final for its final actions too.
        st, body, _ = api("alice", "PUT", "/packages/tiers?overwrite=true",
                          {"parameters": [{"key": "tier", "value": "gold"}]})
        check("package with a parameter", st == 200, (st, body))
        put_action("alice", "tiers/w", annotations=[WEB, FINAL])
        st, body, _ = web("alice", "tiers/w.json?tier=free")
        check("a package parameter of a final action is final", st == 400, (st, body))
        st, body, _ = web("alice", "tiers/w.json")
        check("the package parameter applies", st == 200 and body == {"tier": "gold"}, (st, body))

    @case
    def require_whisk_auth():
        put_action("alice", "keyed", annotations=[WEB, ("require-whisk-auth", True)])
        st, body, _ = web("alice", "default/keyed.json")
        check("require-whisk-auth true without a key is 401", st == 401 and body["code"] == "EAUTH", (st, body))
        bad = keys["alice"].split(":")[0] + ":" + "x" * 64
        st, body, _ = web("alice", "default/keyed.json", auth=bad)
        check("require-whisk-auth true with a wrong key is 401", st == 401, (st, body))
        st, body, _ = web("alice", "default/keyed.json", auth=keys["alice"])
        check("require-whisk-auth true with a valid key is 200", st == 200, (st, body))
        put_action("alice", "secret", annotations=[WEB, ("require-whisk-auth", "s3cret-alice")])
        st, body, _ = web("alice", "default/secret.json")
        check("require-whisk-auth string without the header is 401", st == 401, (st, body))
        st, body, _ = web("alice", "default/secret.json", headers={"X-Require-Whisk-Auth": "nope"})
        check("require-whisk-auth string with a wrong header is 401", st == 401, (st, body))
        st, body, _ = web("alice", "default/secret.json", auth=keys["bob"])
        check("a key does not stand in for the secret", st == 401, (st, body))
        st, body, _ = web("alice", "default/secret.json", headers={"X-Require-Whisk-Auth": "s3cret-alice"})
        check("require-whisk-auth string with the header is 200", st == 200, (st, body))
        put_action("alice", "num", annotations=[WEB, ("require-whisk-auth", 4242)])
        st, body, _ = web("alice", "default/num.json")
        check("require-whisk-auth integer without the header is 401", st == 401, (st, body))
        st, body, _ = web("alice", "default/num.json", headers={"X-Require-Whisk-Auth": "4242"})
        check("require-whisk-auth integer with the header is 200", st == 200, (st, body))
        put_action("alice", "strtrue", annotations=[WEB, ("require-whisk-auth", "true")])
        st, body, _ = web("alice", "default/strtrue.json", auth=keys["alice"])
        check("the string 'true' is a secret, not 'any key'", st == 401, (st, body))
        st, body, _ = web("alice", "default/strtrue.json", headers={"X-Require-Whisk-Auth": "true"})
        check("the string 'true' as the header is 200", st == 200, (st, body))

    SECRET = "alice-web-secret-7f3a"

    def no_secret(what, st, body):
        check(what + " does not show alice's require-whisk-auth",
              SECRET not in json.dumps(body) and "require-whisk-auth" not in json.dumps(body), (st, body))

    @case
    def shared_package_and_binding():
        st, body, _ = api("alice", "PUT", "/packages/shared?overwrite=true", {"publish": True})
        check("alice shares a package", st == 200, (st, body))
        put_action("alice", "shared/tool", params=[("p", 1)],
                   annotations=[WEB, ("require-whisk-auth", SECRET), ("description", "a tool")])
        st, body, _ = api("bob", "PUT", "/packages/b", {"binding": {"namespace": "alice", "name": "shared"}})
        check("bob binds it", st == 200, (st, body))
        st, body, _ = api("bob", "GET", "/packages/b")
        check("bob GETs his binding", st == 200 and [a["name"] for a in body["actions"]] == ["tool"], (st, body))
        no_secret("bob's GET of the binding", st, body)
        check("other annotations are still shown",
              {"key": "description", "value": "a tool"} in body["actions"][0]["annotations"], body)
        st, body, _ = api("bob", "GET", "/actions/b/tool")
        check("bob GETs the action through the binding", st == 200 and body["name"] == "tool", (st, body))
        no_secret("bob's GET of the action", st, body)
        st, body, _ = api("bob", "GET", "/packages")
        no_secret("bob's package list", st, body)
        st, body, _ = api("bob", "GET", "/actions")
        no_secret("bob's action list", st, body)
        st, body, _ = api("bob", "GET", "/actions/b/")
        no_secret("bob's list of the binding's actions", st, body)
        st, body, _ = web("bob", "b/tool.json")
        check("the web action through bob's binding still wants the secret", st == 401, (st, body))
        no_secret("the 401 of the web action", st, body)
        st, body, _ = api("alice", "GET", "/actions/shared/tool")
        check("alice, the owner, sees her annotation",
              st == 200 and {"key": "require-whisk-auth", "value": SECRET} in body["annotations"], (st, body))
        st, body, _ = api("bob", "POST", "/actions/b/tool?blocking=true&result=true", {})
        check("bob invokes through the binding", st == 200 and body == {"p": 1}, (st, body))

        # alice stops sharing: the binding must neither show nor run it.
        st, body, _ = api("alice", "PUT", "/packages/shared?overwrite=true", {"publish": False})
        check("alice unpublishes", st == 200 and body["publish"] is False, (st, body))
        st, body, _ = api("bob", "GET", "/packages/b")
        check("bob's GET of the binding is refused", st == 404 and body["code"] == "ENOENT"
              and "tool" not in json.dumps(body), (st, body))
        st, body, _ = api("bob", "GET", "/actions/b/tool")
        check("bob's GET of the action through the binding is refused", st == 404, (st, body))
        st, body, _ = api("bob", "POST", "/actions/b/tool?blocking=true&result=true", {})
        check("bob's invoke through the binding is refused", st == 404, (st, body))
        st, body, _ = web("bob", "b/tool.json", headers={"X-Require-Whisk-Auth": SECRET})
        check("the web action through the binding is refused", st == 404, (st, body))
        st, body, _ = api("bob", "DELETE", "/packages/b")
        check("bob can still delete his binding", st == 200, (st, body))
        st, body, _ = api("alice", "GET", "/packages/shared")
        check("alice still GETs her package", st == 200 and [a["name"] for a in body["actions"]] == ["tool"], (st, body))
        st, body, _ = api("alice", "POST", "/actions/shared/tool?blocking=true&result=true", {})
        check("alice still invokes her action", st == 200 and body == {"p": 1}, (st, body))
        st, body, _ = api("carol", "PUT", "/packages/c", {"binding": {"namespace": "alice", "name": "shared"}})
        check("carol cannot bind the unpublished package", st == 404, (st, body))

finally:
    c.__exit__(None, None, None)

finish()
