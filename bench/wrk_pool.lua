-- Replays pre-signed webhook requests from $BENCH_POOL (one "signature<TAB>body" per line), in order, wrapping
-- around at the end. Signing happens in Python beforehand: wrk's Lua has no HMAC, and every request needs its own
-- message id (and so its own signature) or the API would answer them as duplicates.
local requests = {}
local count = 0
local index = 0

init = function(args)
  local path = os.getenv("BENCH_POOL")
  for line in io.lines(path) do
    local tab = string.find(line, "\t", 1, true)
    count = count + 1
    requests[count] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = string.sub(line, 1, tab - 1),
    }, string.sub(line, tab + 1))
  end
end

request = function()
  index = index + 1
  if index > count then index = 1 end
  return requests[index]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
