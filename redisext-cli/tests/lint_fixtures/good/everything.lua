#!lua
--[[ good/everything
  Every pattern the lint must accept: key aliases, numkeys, subcommands, and
  loops bounded by arguments, constants and bounded replies.
  KEYS[1]  list
  KEYS[2]  zset
  KEYS[3]  stream
  KEYS[4]  hash
  ARGV[1]  limit  LIMIT, at least 1
  ARGV[2..]  values  the values, at least one
  Returns  the number of items handled
  Worst case  O(LIMIT + number of ARGV)
]]
local list = KEYS[1]
local zset = KEYS[2]
local limit = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000

-- A reply limited by an argument.
local expired = redis.call('ZRANGE', zset, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  redis.call('ZREM', zset, member)
end
for _, item in ipairs(redis.call('LRANGE', list, 0, limit - 1)) do
  redis.call('LREM', list, 1, item)
end
local popped = redis.call('RPOP', list, limit)
if popped then
  for i = #popped, 1, -1 do
    redis.call('LPUSH', list, popped[i])
  end
end

-- Bounded by the arguments: their number, or a constant.
local count = #ARGV - 1
for first = 2, #ARGV, 100 do
  redis.call('LPUSH', list, unpack(ARGV, first, math.min(first + 99, #ARGV)))
end
for _ = 1, math.min(count, 64) do
  redis.call('LPUSH', list, 1)
end
local fields = redis.call('HMGET', KEYS[4], 'a', 'b')
for i, value in ipairs(fields) do
  redis.call('HSET', KEYS[4], i, value or '')
end

-- A counter compared with a bounded value ends these loops.
local done = 0
while done < limit and redis.call('LLEN', list) > 0 do
  redis.call('RPOP', list)
  done = done + 1
end
repeat
  done = done - 1
until done <= 0 or redis.call('EXISTS', list) == 0

-- Keys through unpack, numkeys and subcommands.
for _, key in ipairs(KEYS) do
  redis.call('TOUCH', key)
end
redis.call('ZUNIONSTORE', zset, 2, zset, KEYS[1], 'WEIGHTS', 1, 2)
redis.call('XGROUP', 'CREATE', KEYS[3], 'workers', '$', 'MKSTREAM')
redis.call('XREAD', 'COUNT', limit, 'STREAMS', KEYS[3], '0')
redis.pcall('EXISTS', unpack(KEYS))
return done
