#!lua
--[[ rate_limiter/acquire
  GCRA (generic cell rate algorithm): admit a request of a given cost if the
  theoretical arrival time (TAT), advanced by cost * interval, is within the burst
  tolerance of now; otherwise refuse and tell how long to wait. Times in
  microseconds of server time; the key expires when the limiter is back to full.
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  tat  TAT (string, microseconds since the epoch)
  KEYS[2..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  interval_us  emission interval: microseconds per unit of cost (>= 1)
  ARGV[2]  tolerance_us  burst tolerance: burst * interval, microseconds
  ARGV[3]  cost  units taken (>= 1, at most the burst)
  ARGV[4]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  {allowed 1 or 0, remaining units now, retry after us (0 when allowed), reset after us}
  Worst case  O(1)
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[4], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[2], lane)
  local last_seq, first = 0, false
  if last then
    last_seq, first = cmsgpack.unpack(last)
  end
  if last_seq == tonumber(seq) then
    return first
  elseif last_seq > tonumber(seq) then
    return redis.error_reply('REDISEXT_SUPERSEDED lane ' .. lane .. ' has moved on to operation ' .. last_seq)
  end
end
local function apply()
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local interval = tonumber(ARGV[1])
  local tolerance = tonumber(ARGV[2])
  local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval * tonumber(ARGV[3])
  local allow_at = new_tat - tolerance
  if allow_at > now then
    local remaining = math.max(0, math.floor((now + tolerance - tat) / interval))
    return {0, remaining, allow_at - now, tat - now}
  end
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  return {1, math.floor((now + tolerance - new_tat) / interval), 0, new_tat - now}
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[2], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
