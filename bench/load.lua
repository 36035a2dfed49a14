-- wrk script of bench/load.sh: every request goes out as the next logged-in user to the next
-- page of a list, every answer other than 200 is counted (a 302 means the session was lost,
-- and wrk alone would count it as a success), and one result line is printed at the end.
--
-- Environment: LOAD_COOKIES (a file with one Cookie header value per line), LOAD_PATHS (a file
-- with one path per line), LOAD_USER_AGENT (the User-Agent the users logged in with: the
-- session is bound to it).

local function lines(name)
  local found = {}
  for line in io.lines(name) do
    if line ~= "" then
      found[#found + 1] = line
    end
  end
  return found
end

local threads = {}
local cookies = lines(os.getenv("LOAD_COOKIES"))
local paths = lines(os.getenv("LOAD_PATHS"))
local agent = os.getenv("LOAD_USER_AGENT")

function setup(thread)
  -- Each thread starts elsewhere in the lists so that threads do not move in step.
  thread:set("offset", #threads * 7)
  table.insert(threads, thread)
end

local n = 0
not_ok = 0
redirected = 0
statuses = {}

function init(args)
  n = offset or 0
end

function request()
  n = n + 1
  local headers = {
    ["Cookie"] = cookies[(n % #cookies) + 1],
    ["User-Agent"] = agent,
  }
  return wrk.format("GET", paths[(n % #paths) + 1], headers)
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
    if status >= 300 and status < 400 then
      redirected = redirected + 1
    end
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad, moved, seen, codes = 0, 0, {}, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
    moved = moved + thread:get("redirected")
    for status, count in pairs(thread:get("statuses")) do
      seen[status] = (seen[status] or 0) + count
    end
  end
  for status, count in pairs(seen) do
    codes[#codes + 1] = status .. ":" .. count
  end
  table.sort(codes)
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d seconds=%.3f rps=%.1f p50=%.2f p90=%.2f p99=%.2f max=%.2f "
      .. "not_ok=%d redirected=%d socket_errors=%d timeouts=%d statuses=%s\n",
    summary.requests,
    summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(90) / 1000,
    latency:percentile(99) / 1000,
    latency.max / 1000,
    bad,
    moved,
    e.connect + e.read + e.write,
    e.timeout,
    #codes > 0 and table.concat(codes, ",") or "-"
  ))
end
