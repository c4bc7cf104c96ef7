#!lua
--[[ resource_pool/checkout
  Lease the member idle longest, after returning up to LIMIT expired leases to the
  idle set (a retiring member is dropped instead), under the holder's TOKEN. Sent
  again with the same token while that lease lasts, it returns the same lease
  instead of a second one. The fencing number only grows. Every key is read
  before anything is written, so a key of another type fails the checkout with
  nothing changed. A fencing counter holding a non-integer fails its INCR after
  the reclaiming (which leaves every member idle or leased, as any checkout
  would) and before the lease.
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  leases  hash (member -> fencing number of its current lease)
  KEYS[4]  fence  fencing counter (string)
  KEYS[5]  retiring  set (leased members removed from the pool, dropped when their lease ends)
  KEYS[6]  tokens  hash ("t:" token -> member, "h:" member -> token, for each lease)
  ARGV[1]  lease_ms  lease length, ms (>= 1)
  ARGV[2]  limit  the most expired leases reclaimed by this call (>= 1)
  ARGV[3]  token  the holder's token for this checkout (32 hexadecimal digits)
  Returns  {member, fencing number, deadline ms, token}, or nil when no member is idle
  Worst case  O(LIMIT * log N), N the number of members: LIMIT bounds the reclaiming
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Read every key first: one of another type fails here, before any write.
redis.call('ZCARD', KEYS[1])
redis.call('HLEN', KEYS[3])
redis.call('GET', KEYS[4])
redis.call('SCARD', KEYS[5])
local mine = redis.call('HGET', KEYS[6], 't:' .. ARGV[3])

local expired = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[3], member)
  local token = redis.call('HGET', KEYS[6], 'h:' .. member)
  if token then
    redis.call('HDEL', KEYS[6], 't:' .. token, 'h:' .. member)
  end
  if redis.call('SREM', KEYS[5], member) == 0 then
    redis.call('ZADD', KEYS[1], now, member)
  end
end

-- Sent again: the lease this token took, while it lasts.
if mine then
  local deadline = redis.call('ZSCORE', KEYS[2], mine)
  if deadline and redis.call('HGET', KEYS[6], 'h:' .. mine) == ARGV[3] then
    return {mine, tonumber(redis.call('HGET', KEYS[3], mine)), tonumber(deadline), ARGV[3]}
  end
end

if redis.call('ZCARD', KEYS[1]) == 0 then
  return false
end
local fence = redis.call('INCR', KEYS[4])
local member = redis.call('ZPOPMIN', KEYS[1])[1]
local deadline = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[2], deadline, member)
redis.call('HSET', KEYS[3], member, fence)
redis.call('HSET', KEYS[6], 't:' .. ARGV[3], member, 'h:' .. member, ARGV[3])
return {member, fence, deadline, ARGV[3]}
