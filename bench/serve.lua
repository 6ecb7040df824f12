-- wrk script for bench/serve.sh: sends the bearer token from $BEARER on every request and
-- prints one machine-readable line with throughput, latency percentiles and errors.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BEARER")

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status, errors))
end
