#!lua flags=no-writes
--[[ semaphore/held
  Count the permits held now (deadline not yet passed).
  KEYS[1]  holders  zset (permit id -> deadline, ms)
  Returns  the number of permits held
  Worst case  O(log P), P permits
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
