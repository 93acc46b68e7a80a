-- wrk script: POST pre-signed requests (portal webhooks, Twilio webhooks) to one URL.
--
--   wrk -t2 -c16 -d10s -s signed_requests.lua http://127.0.0.1:PORT/PATH -- REQUESTS_BASE NTHREADS [DELAY_MS]
--
-- REQUESTS_BASE.<i> (written by gen_signed.py --threads NTHREADS) holds thread i's share, one
-- request per line: header fields "Name: value" separated by tabs, then a tab and the body.
-- Each wrk thread loads only its own file in init() and cycles through it (a wrap-around would
-- turn into idempotent replays, which the done() report flags). DELAY_MS > 0 makes each
-- connection wait that long between requests: a fixed, lower offered rate for latency runs.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs = {}
local delay_ms = 0
local n, i = 0, 0
local wrapped = 0
ok2xx, non2xx, s202 = 0, 0, 0
statuses = ""
local seen = {}

function init(args)
  local base = args[1] or error("usage: -- REQUESTS_BASE NTHREADS")
  local nthreads = tonumber(args[2] or "1")
  delay_ms = tonumber(args[3] or "0")
  local file = nthreads > 1 and (base .. "." .. tid) or base
  local f = assert(io.open(file, "r"))
  for line in f:lines() do
    local fields = {}
    for field in line:gmatch("[^\t]+") do fields[#fields + 1] = field end
    if #fields >= 2 then
      local headers = {}
      for k = 1, #fields - 1 do
        local name, value = fields[k]:match("^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
      end
      n = n + 1
      reqs[n] = { headers, fields[#fields] }
    end
  end
  f:close()
  if n == 0 then error("no requests in " .. file) end
end

function request()
  i = i + 1
  if i > n then i = 1; wrapped = wrapped + 1 end
  local r = reqs[i]
  return wrk.format("POST", wrk.path, r[1], r[2])
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
    if status == 202 or status == 200 then s202 = s202 + 1 end
  else
    non2xx = non2xx + 1
    if not seen[status] then
      seen[status] = true
      statuses = statuses .. status .. " "
    end
  end
  wrapped_out = wrapped
end

function done(summary, latency, requests)
  local ok, bad, acc, wraps, codes = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    ok = ok + (t:get("ok2xx") or 0)
    bad = bad + (t:get("non2xx") or 0)
    acc = acc + (t:get("s202") or 0)
    wraps = wraps + (t:get("wrapped_out") or 0)
    codes = codes .. (t:get("statuses") or "")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_s=%.2f req_per_s=%.1f status_2xx=%d status_202_or_200=%d non2xx=%d " ..
    "non2xx_codes=[%s] socket_errors=%d (connect=%d read=%d write=%d timeout=%d) " ..
    "latency_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f mean=%.2f wrapped=%d\n",
    summary.requests, secs, summary.requests / secs, ok, acc, bad, codes,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000, wraps))
end
