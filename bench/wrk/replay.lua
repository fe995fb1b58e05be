-- wrk: POST pre-signed requests, one per line of FILE ("<form body>\t<X-Twilio-Signature>"),
-- each thread its own share, in turn.
-- wrk -s bench/wrk/replay.lua URL -- PATH FILE
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  lines = {}
  local i = 0
  for line in io.lines(args[2]) do
    if i % 2 == tid then table.insert(lines, line) end
    i = i + 1
  end
  index = 0
end

function request()
  index = index % #lines + 1
  local body, signature = lines[index]:match("^(.-)\t(.*)$")
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = signature}, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "non_2xx": %d, "connect_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.timeout))
end
