-- wrk script: POST the benchmark's request body, then print one JSON line of results.
-- The body comes from the BENCH_BODY environment variable (bench/suite/served.py sets it).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"id":7,"name":"teapot","qty":3,"price":2.5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
-- More headers, one "Name: value" a line, from BENCH_HEADERS (bench/suite/service.py sends the API key).
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"latency_mean_us":%.1f,"latency_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
