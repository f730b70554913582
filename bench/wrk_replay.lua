-- Replays pre-signed webhooks from a file, each request once.
--   wrk ... -s bench/wrk_replay.lua URL -- FILE MODE NTHREADS READ [POSITIONS_OUT]
-- FILE: one request a line, "signature<TAB>event name<TAB>body".
-- MODE: "once" stops a thread when its share of the file is used up (unique
-- events for the service); "wrap" starts over (bare baselines).
-- READ: "bodies" reads each response's body to count accepted and duplicate
-- answers and keep the positions; "status" leaves responses to wrk, which
-- counts the non-2xx itself. wrk hands a response to Lua only when the
-- script has a response() after the first thread's init, which costs the
-- generator 2 to 4 us a request more: rounds that need only the rate (and
-- may share the generator's core with a process under test) do without.
-- done() prints one line "BENCH_JSON {...}" and writes every position the
-- service answered "accepted" to POSITIONS_OUT, one a line.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path, mode, nthreads = args[1], args[2], tonumber(args[3])
  wrap = mode == "wrap"
  if args[4] == "status" then
    response = nil
  elseif args[4] ~= "bodies" then
    error("READ must be bodies or status, not " .. tostring(args[4]))
  end
  positions_path = args[5]
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local sig, name, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["x-jericommerce-hmac-sha256"] = sig,
        ["x-jericommerce-event-type"] = name,
      }, body)
    end
    i = i + 1
  end
  idle = wrk.format("GET", "/healthz")
  cursor = 0
  ok, accepted, duplicate, other, exhausted = 0, 0, 0, 0, 0
  positions = {}
end

function request()
  cursor = cursor + 1
  if cursor > #reqs then
    if wrap then
      cursor = 1
    else
      -- Out of unique events: stop; whatever is written now is harmless.
      exhausted = 1
      wrk.thread:stop()
      return idle
    end
  end
  return reqs[cursor]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    other = other + 1
    return
  end
  ok = ok + 1
  local s = body:match('"status"%s*:%s*"(%a+)"')
  if s == "accepted" then
    accepted = accepted + 1
    positions[#positions + 1] = tonumber(body:match('"position"%s*:%s*(%d+)'))
  elseif s == "duplicate" then
    duplicate = duplicate + 1
  end
end

function done(summary, latency, requests)
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    non2xx = summary.errors.status,
    p50_us = latency:percentile(50),
    p99_us = latency:percentile(99),
    max_us = latency.max,
    ok = 0, accepted = 0, duplicate = 0, other = 0, exhausted = 0,
  }
  local pos_out = nil
  local path = threads[1]:get("positions_path")
  if path ~= nil then pos_out = io.open(path, "w") end
  for _, t in ipairs(threads) do
    for _, k in ipairs({"ok", "accepted", "duplicate", "other", "exhausted"}) do
      out[k] = out[k] + t:get(k)
    end
    if pos_out ~= nil then
      for _, p in ipairs(t:get("positions")) do pos_out:write(p, "\n") end
    end
  end
  if pos_out ~= nil then pos_out:close() end
  local parts = {}
  for k, v in pairs(out) do parts[#parts + 1] = string.format('"%s":%s', k, v) end
  print("BENCH_JSON {" .. table.concat(parts, ",") .. "}")
end
