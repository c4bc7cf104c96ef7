#!lua
--[[ bad/loops
  Loops whose bound is the size of stored data, or nothing at all.
  KEYS[1]  list
  KEYS[2]  zset
  KEYS[3]  counter
  Returns  nothing
  Worst case  unbounded
]]
for i = 1, redis.call('LLEN', KEYS[1]) do
  redis.call('LSET', KEYS[1], i, 0)
end
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('ZREM', KEYS[2], member)
end
for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  redis.call('LREM', KEYS[1], 0, item)
end
local everything = redis.call('ZRANGE', KEYS[2], '-inf', '+inf', 'BYSCORE')
for _, member in ipairs(everything) do
  redis.call('ZREM', KEYS[2], member)
end
local unlimited = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '+inf', 'LIMIT', 0, -1)
for _, member in ipairs(unlimited) do
  redis.call('ZREM', KEYS[2], member)
end
local stored = tonumber(redis.call('GET', KEYS[3]))
for _ = 1, stored do
  redis.call('INCR', KEYS[3])
end
for _ = 1, 10, 0 do
  redis.call('INCR', KEYS[3])
end
while true do
  if redis.call('RPOP', KEYS[1]) == false then break end
end
while redis.call('LLEN', KEYS[1]) > 0 do
  redis.call('RPOP', KEYS[1])
end
repeat
  local item = redis.call('RPOP', KEYS[1])
until item == false
return 1
