#!lua
--[[ resource_pool/checkin
  End a lease: the member goes back to the idle set (or leaves the pool when it was
  removed while leased), and one waiter is signalled. Refused when the lease is no
  longer this holder's (it was reclaimed after its deadline, maybe leased again).
  Every key is read before anything is written, so a key of another type fails
  the checkin with nothing changed.
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  leases  hash (member -> fencing number of its current lease)
  KEYS[4]  retiring  set (leased members removed from the pool)
  KEYS[5]  signal  list (one element per member a waiter may take; never longer than the idle set)
  ARGV[1]  member  member
  ARGV[2]  fence  the lease's fencing number
  Returns  1 when the lease was this holder's and has ended, 0 when it was not (nothing changed)
  Worst case  O(log N), N the number of members
]]
-- Read every key first: one of another type fails here, before any write.
redis.call('ZCARD', KEYS[1])
redis.call('ZCARD', KEYS[2])
redis.call('SCARD', KEYS[4])
redis.call('LLEN', KEYS[5])
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('SREM', KEYS[4], ARGV[1]) == 1 then
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('LPUSH', KEYS[5], 1)
redis.call('LTRIM', KEYS[5], 0, redis.call('ZCARD', KEYS[1]) - 1)
return 1
