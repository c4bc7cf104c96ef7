#!lua
--[[ semaphore/acquire
  Take a permit if one is free, after dropping holders past their deadline. The
  number of permits is stored on first use, and a client with another is refused.
  Every key is read before anything is written, and the id counter (which may
  hold a non-integer) is the first write, so a key of the wrong type or content
  fails the acquire with nothing changed.
  KEYS[1]  holders  zset (permit id -> deadline, ms; never more members than permits)
  KEYS[2]  settings  hash (permits)
  KEYS[3]  ids  permit id counter (string; only grows, so ids are fencing numbers)
  ARGV[1]  permits  the number of permits (>= 1)
  ARGV[2]  hold_ms  how long the permit is held unless released or extended, ms (>= 1)
  Returns  {permit id, deadline ms}, or nil when every permit is held;
           error REDISEXT_SETTINGS on another number of permits
  Worst case  O(log P + E), P permits, E expired holders dropped (E <= P)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local stored = redis.call('HGET', KEYS[2], 'permits')
local held = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
redis.call('GET', KEYS[3])
if stored and stored ~= ARGV[1] then
  return redis.error_reply('REDISEXT_SETTINGS stored permits ' .. stored .. ', requested permits ' .. ARGV[1])
end

local id = false
if held < tonumber(ARGV[1]) then
  id = redis.call('INCR', KEYS[3])
end
if not stored then
  redis.call('HSET', KEYS[2], 'permits', ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not id then
  return false
end
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], deadline, id)
return {id, deadline}
