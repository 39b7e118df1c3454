-- post.lua - wrk script for bench/invoke.py.
-- Every request is a POST of a small JSON body; the Authorization header comes
-- from the BENCH_AUTH environment variable (the full header value, e.g.
-- "Basic dXVpZDprZXk="), so the same script drives the gateway and nginx.
-- At the end it prints one machine-readable line, BENCH_JSON {...}, with the
-- exact counts and latency percentiles (microseconds) that invoke.py parses.

wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
   wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"err_status":%d,' ..
      '"lat_p50":%d,"lat_p90":%d,"lat_p99":%d,"lat_p999":%d,"lat_max":%d,"lat_mean":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
