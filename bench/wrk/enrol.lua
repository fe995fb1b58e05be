-- wrk: POST a new visit (a new client each time) to the path given as the first argument.
-- wrk -s bench/wrk/enrol.lua URL -- PATH API_KEY RUN_PREFIX
local threads = {}
local areas = {202, 212, 312, 415, 617, 303, 206, 305}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path, key, prefix = args[1], args[2], args[3]
  counter = 0
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}
end

function request()
  counter = counter + 1
  local n = tid * 40000 + counter
  local area = areas[(math.floor(n / 10000) % 8) + 1]
  local body = string.format(
    '{"external_id": "%s-%d", "client": {"name": "Client %d", "phone": "+1%d555%04d", ' ..
    '"email": "c%d@example.com", "sms_consent": true}, "pain_before": 5, "pain_after": 3}',
    prefix, n, n, area, n % 10000, n)
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "non_2xx": %d, "connect_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.timeout))
end
