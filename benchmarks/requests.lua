-- Requests for wrk, formatted once per thread from a file the suite writes.
--   BENCH_LINES   one URL path per line (GET), or one JSON body per line (POST)
--   BENCH_METHOD  GET (default) or POST; BENCH_PATH is the POST target
--   BENCH_HEADER_NAME / BENCH_HEADER_VALUE  one extra header (the API key)
local method = os.getenv("BENCH_METHOD") or "GET"
local target = os.getenv("BENCH_PATH")
-- A table given to wrk.format replaces wrk.headers, Host included.
local headers = { Host = wrk.host .. ":" .. wrk.port }
local header_name = os.getenv("BENCH_HEADER_NAME")
if header_name and header_name ~= "" then
  headers[header_name] = os.getenv("BENCH_HEADER_VALUE")
end
if method ~= "GET" then
  headers["Content-Type"] = "application/json"
end

local prepared = {}
for line in io.lines(os.getenv("BENCH_LINES")) do
  if method == "GET" then
    prepared[#prepared + 1] = wrk.format("GET", line, headers)
  else
    prepared[#prepared + 1] = wrk.format(method, target, headers, line)
  end
end
local count = #prepared
local index = 0

function init(args)
  -- Each run and thread starts at its own place: a run does not re-ask the
  -- numbers the previous one asked (the service memoises recent numbers).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
  index = math.random(count) - 1
end

function request()
  index = index % count + 1
  return prepared[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
