-- wrk script of bench/load.sh: visitors vary per request. Rotates X-Forwarded-For IPs
-- and User-Agents from bench/data (BENCH_DATA), Accept-Language and the keyword, requesting
-- /BENCH_ALIAS. The n-th request of a run is built as in bench/src/lib.rs (Visitors::request);
-- wrk threads interleave their sequence numbers. The same script drives Switchyard and bare302.

local data = os.getenv("BENCH_DATA") or "bench/data"
local alias = os.getenv("BENCH_ALIAS") or "bench"
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")

local languages = {
  "en-US,en;q=0.9", "en-GB,en;q=0.8", "sv-SE,sv;q=0.9,en;q=0.8", "zh-CN,zh;q=0.9",
  "de-DE,de;q=0.9,en;q=0.7", "fil-PH,en;q=0.8", "ru-RU,ru;q=0.9",
}
local keywords = { "shoes", "bags", "watches", "test", "free+gift", "" }

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local ips, uas, step, n

function init(args)
  ips = read_lines(data .. "/ips.txt")
  uas = read_lines(data .. "/user_agents.txt")
  -- Each thread has its own Lua state: the thread count comes in through WRK_THREADS.
  step = tonumber(os.getenv("WRK_THREADS") or "1")
  n = offset + index
end

local function at(list, i)
  return list[(i % #list) + 1]
end

-- Every fourth request is a new visitor: an address in 2001:218::/32 (Japan in the MaxMind
-- City test database), distinct for each of 2^32 sequence numbers.
local function fresh_ip(i)
  return string.format("2001:218:%x:%x::1", math.floor(i / 65536) % 65536, i % 65536)
end

function request()
  local ip = (n % 4 == 3) and fresh_ip(n) or at(ips, n)
  local headers = {
    ["Host"] = wrk.host .. ":" .. wrk.port,
    ["User-Agent"] = at(uas, n + math.floor(n / #ips)),
    ["X-Forwarded-For"] = ip,
    ["Accept-Language"] = at(languages, n),
    ["Accept"] = "*/*",
  }
  local path = "/" .. alias .. "?keyword=" .. at(keywords, n) .. "&source=fb&sub_id_1=" .. n
  n = n + step
  return wrk.format("GET", path, headers)
end
