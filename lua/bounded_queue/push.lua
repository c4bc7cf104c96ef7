#!lua
--[[ bounded_queue/push
  Append values, all or nothing, never letting the length pass the capacity: when
  they do not fit, refuse (overflow reject) or first drop the oldest items and
  return them (overflow evict). The capacity and policy are stored on first use, and
  a client with other settings is refused. Wakes up to 64 waiters. Every key is
  read before anything is written, so a key of another type fails the push with
  nothing changed (a retry cannot push twice).
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  queue  list (newest at the head by LPUSH, oldest at the tail for RPOP, as Python's Queue)
  KEYS[2]  settings  hash (capacity, overflow)
  KEYS[3]  signal  list (never longer than the queue was after the last push)
  KEYS[4..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  capacity  the most items the queue holds (>= 1)
  ARGV[2]  overflow  policy: reject or evict
  ARGV[3]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  ARGV[4..]  values  the values to push, oldest first, at most capacity of them (none only stores the settings)
  Returns  the evicted items, oldest first (empty unless overflow is evict),
           or error REDISEXT_FULL when refused, REDISEXT_SETTINGS on other settings
  Worst case  O(V + E), V values pushed and E items evicted, both at most the capacity
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[3], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[4], lane)
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
  local stored = redis.call('HMGET', KEYS[2], 'capacity', 'overflow')
  local length = redis.call('LLEN', KEYS[1])
  redis.call('LLEN', KEYS[3])
  if stored[1] then
    if stored[1] ~= ARGV[1] or stored[2] ~= ARGV[2] then
      return redis.error_reply('REDISEXT_SETTINGS stored capacity ' .. stored[1] .. ' overflow ' .. tostring(stored[2])
        .. ', requested capacity ' .. ARGV[1] .. ' overflow ' .. ARGV[2])
    end
  else
    redis.call('HSET', KEYS[2], 'capacity', ARGV[1], 'overflow', ARGV[2])
  end

  local capacity = tonumber(ARGV[1])
  local count = #ARGV - 3
  local excess = length + count - capacity
  local evicted = {}
  if excess > 0 then
    if ARGV[2] ~= 'evict' or count > capacity then
      return redis.error_reply('REDISEXT_FULL capacity ' .. capacity .. ', length ' .. length .. ', offered ' .. count)
    end
    evicted = redis.call('RPOP', KEYS[1], excess)
  end
  -- In chunks, to stay below the Lua stack's limit on unpack.
  for first = 4, #ARGV, 1000 do
    redis.call('LPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
  end
  if count > 0 then
    for _ = 1, math.min(count, 64) do
      redis.call('LPUSH', KEYS[3], 1)
    end
    redis.call('LTRIM', KEYS[3], 0, length - #evicted + count - 1)
  end
  return evicted
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[4], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return result
