-- wrk script of the collector benchmark (bench/peers/collector.sh): POSTs
-- pre-built bodies in turn, each thread starting at a different one.
--
--   wrk -t2 -c64 -d15s --latency -s bench/collector/post.lua URL -- PREFIX CONTENT_TYPE [KEY]
--
-- PREFIX names the body files PREFIX-0, PREFIX-1, ... written by
-- `loadgen bodies`; KEY, when given, is sent as "Authorization: Bearer KEY".
-- Requests are built once in init, so request() costs the load generator
-- next to nothing.

local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local prefix, content_type, key = args[1], args[2], args[3]
  if prefix == nil or content_type == nil then
    error("usage: wrk ... -s post.lua URL -- PREFIX CONTENT_TYPE [KEY]")
  end
  local headers = { ["Content-Type"] = content_type }
  if key ~= nil and key ~= "" then
    headers["Authorization"] = "Bearer " .. key
  end
  requests = {}
  local i = 0
  while true do
    local f = io.open(prefix .. "-" .. i, "rb")
    if f == nil then break end
    local body = f:read("*a")
    f:close()
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    i = i + 1
  end
  if #requests == 0 then
    error("no bodies " .. prefix .. "-0, " .. prefix .. "-1, ...: run loadgen bodies first")
  end
  next_request = (id or 0) * 7 % #requests
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
