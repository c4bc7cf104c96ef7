#!lua
--[[ resource_pool/add
  Add a member to the idle set, and signal one waiter. A member still leased but
  being removed (retiring) is kept instead: it returns to the idle set at checkin.
  Every key is read before anything is written, so a key of another type fails
  the add with nothing changed.
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  retiring  set (leased members removed from the pool)
  KEYS[4]  signal  list (never longer than the idle set)
  ARGV[1]  member  member
  Returns  1 when the member was added (or its removal cancelled), 0 when it already belonged
  Worst case  O(log N), N the number of members
]]
-- Read every key first: one of another type fails here, before any write.
local idle = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('SCARD', KEYS[3])
redis.call('LLEN', KEYS[4])
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return redis.call('SREM', KEYS[3], ARGV[1])
end
if idle then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('LPUSH', KEYS[4], 1)
redis.call('LTRIM', KEYS[4], 0, redis.call('ZCARD', KEYS[1]) - 1)
return 1
