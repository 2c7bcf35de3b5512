-- wrk script for bench/inbound_webhook.py: each request is the next pre-signed inbound webhook
-- (one form-encoded body a line), so every request carries its own messageId, used once.
--
--     wrk -s bench/inbound_webhook.lua <url> -- <bodies file> <wrk threads>
--
-- Thread k of T sends lines k, k+T, k+2T, ... of the file. When a thread runs out it sends
-- `GET /bodies-ran-out` instead (counted as `exhausted`: the harness then refuses the run).
-- done() prints one `BENCH key=value ...` line: bodies posted, 2xx, other answers by status
-- (posted minus answered were in flight when wrk stopped), and wrk's own figures (latency in
-- microseconds).

local threads = {}
local started = 0

function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end

function init(args)
  local stride = tonumber(args[2])
  bodies = {}
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number % stride == id then
      bodies[#bodies + 1] = line
    end
    line_number = line_number + 1
  end
  next_body = 1
  posted, accepted, refused, exhausted, statuses = 0, 0, 0, 0, ""
  other = {}
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
  local body = bodies[next_body]
  if body == nil then
    exhausted = exhausted + 1
    return wrk.format("GET", "/bodies-ran-out")
  end
  next_body = next_body + 1
  posted = posted + 1
  return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    accepted = accepted + 1
  else
    refused = refused + 1
    other[status] = (other[status] or 0) + 1
    -- thread:get copies plain values only: keep the tally as "status:count,..." too
    local parts = {}
    for code, count in pairs(other) do
      parts[#parts + 1] = code .. ":" .. count
    end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local total = { posted = 0, accepted = 0, refused = 0, exhausted = 0 }
  local tallies, posted_by_thread = {}, {}
  for _, thread in ipairs(threads) do
    posted_by_thread[#posted_by_thread + 1] = thread:get("posted")
    for name, sum in pairs(total) do
      total[name] = sum + thread:get(name)
    end
    local tally = thread:get("statuses")
    if tally ~= "" then
      tallies[#tallies + 1] = tally
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "BENCH posted=%d accepted=%d refused=%d exhausted=%d requests=%d duration_us=%d " ..
    "p50_us=%d p99_us=%d max_us=%d socket_errors=%d timeouts=%d other=%s " ..
    "posted_by_thread=%s\n",
    total.posted, total.accepted, total.refused, total.exhausted, summary.requests,
    summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write, errors.timeout,
    #tallies > 0 and table.concat(tallies, ",") or "-", table.concat(posted_by_thread, ",")))
end
