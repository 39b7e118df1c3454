"""Issue 5, point 6: the sandboxes of an action follow its load and fall to zero
when it is idle. A burst of concurrent calls makes the invoker hold as many
sandboxes as calls ran at once (Little's law: arrival rate x duration, capped by
the scheduler's max_action_sandboxes); with the idle time set to 2 s they are
all evicted once the action goes quiet; a later call starts one again."""
import concurrent.futures
import time

from cluster import Cluster, wait_until
from gtest import case, check, finish

SLOW = "import time\ndef main(a):\n    time.sleep(a.get('s', 0))\n    return {'ok': True}\n"

c = Cluster("scaling", invoker_args=["--idle_timeout_s", "2"],
            scheduler_args=["--max_action_sandboxes", "3"]).__enter__()
try:
    c.create_namespace("guest")
    AUTH = c.create_key("guest")
    time.sleep(0.3)
    port = c.inv_metrics[0]

    def sandboxes():
        return c.metric(port, "gust_invoker_sandboxes")

    def invoke(s):
        return c.api("POST", "/api/v1/namespaces/_/actions/slow?blocking=true&result=true", {"s": s}, AUTH)[0]

    @case
    def follows_load_and_falls_to_zero():
        st, b, _ = c.api("PUT", "/api/v1/namespaces/_/actions/slow", {"exec": {"kind": "python:3", "code": SLOW}}, AUTH)
        check("created", st == 200, (st, b))
        check("one call starts one sandbox", invoke(0) == 200 and sandboxes() == 1, sandboxes())
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            codes = list(ex.map(invoke, [1.0] * 8))
        check("a burst of 8 all answered", codes == [200] * 8, codes)
        n = sandboxes()
        check("the burst ran on as many sandboxes as the per-action cap allows (3)", n == 3, n)
        gone = wait_until(lambda: sandboxes() == 0, timeout=10, interval=0.2)
        check("idle: the action's sandboxes fall to zero", gone, sandboxes())
        check("and come back on demand", invoke(0) == 200 and sandboxes() == 1, sandboxes())
finally:
    c.__exit__(None, None, None)
finish()
