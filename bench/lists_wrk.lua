-- wrk script for bench/lists: sends the bearer token and the headers the TLS proxy adds in production, counts
-- non-2xx answers, and prints one JSON line with the latency percentiles (ms) at the end.
-- Environment: CARREL_BENCH_TOKEN (the bearer token), CARREL_BENCH_HOST (the Host header), CARREL_BENCH_CLOSE.
local token = os.getenv("CARREL_BENCH_TOKEN") or ""
local host = os.getenv("CARREL_BENCH_HOST")

wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["X-Forwarded-Proto"] = "https"
wrk.headers["Accept"] = "application/json"
if host then
  wrk.headers["Host"] = host
end
-- CARREL_BENCH_CLOSE=1: a new connection per request, as from a proxy that keeps no upstream connections open.
if os.getenv("CARREL_BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  statuses = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local errors = 0
  local seen = {}
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("non2xx")
    for status, count in pairs(thread:get("statuses")) do
      seen[#seen + 1] = string.format('"%d": %d', status, count)
    end
  end
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, ' ..
    '"non2xx": %d, "socket_errors": %d, "statuses": {%s}, ' ..
    '"socket": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors, socket, table.concat(seen, ", "),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
