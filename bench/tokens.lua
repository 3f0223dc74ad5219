-- wrk script: every request carries the next Bearer token from a file (one token per line),
-- cycling through the list. With more distinct tokens than portcullis's token cache holds
-- (10,000, oldest evicted first), every request is a cache miss.
--   wrk -tT ... -s bench/tokens.lua URL -- TOKENS_FILE [START_INDEX] [T]
-- Thread k of T sends tokens START+k, START+k+T, ... so threads never share a token; when
-- the run ends, done() prints "bench-next-index: N", where the next run should start so that
-- it does not repeat tokens the previous one just put in the cache.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
  nthreads = tonumber(args[3] or "1") or 1
  i = (tonumber(args[2] or "0") or 0) + (tid or 0)
end

function request()
  wrk.headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]
  i = i + nthreads
  return wrk.format()
end

function done(summary, latency, requests)
  local next = 0
  for _, t in ipairs(threads) do
    local ti = t:get("i")
    if ti and ti > next then next = ti end
  end
  io.write(string.format("bench-next-index: %d\n", next))
end
