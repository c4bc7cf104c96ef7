#!lua
--[[ reliable_queue/pop
  Deliver the next item: first return up to LIMIT in-flight items whose visibility
  deadline has passed to the front of the ready list (or, after MAX deliveries, to
  the dead-letter list), then move the next ready item in flight with a deadline.
  KEYS[1]  ready list of ids (next to deliver at the tail)
  KEYS[2]  items hash (id -> value)
  KEYS[3]  deliveries hash (id -> times delivered)
  KEYS[4]  in-flight zset (id -> visibility deadline, ms)
  KEYS[5]  dead-letter list (values; oldest at the tail)
  ARGV[1]  visibility, ms (>= 1)
  ARGV[2]  MAX deliveries before an item is dead-lettered (>= 1)
  ARGV[3]  LIMIT: the most expired deliveries reclaimed by this call (>= 1)
  Returns  {id, delivery number, deadline ms, value}, or nil when nothing is ready;
           error REDISEXT_FOREIGN_ITEM (nothing changed) when the next element is no id of this queue
  Worst case  O(LIMIT * log F), F the number of items in flight: LIMIT bounds the reclaiming
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local max_deliveries = tonumber(ARGV[2])

local expired = redis.call('ZRANGE', KEYS[4], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[4], id)
  if tonumber(redis.call('HGET', KEYS[3], id) or 0) >= max_deliveries then
    redis.call('LPUSH', KEYS[5], redis.call('HGET', KEYS[2], id))
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  else
    redis.call('RPUSH', KEYS[1], id)
  end
end

local id = redis.call('RPOP', KEYS[1])
if not id then
  return false
end
local value = redis.call('HGET', KEYS[2], id)
if not value then
  -- Not an id this model pushed (another writer's list): put it back untouched.
  redis.call('RPUSH', KEYS[1], id)
  return redis.error_reply('REDISEXT_FOREIGN_ITEM the ready list holds an element that is no item id of this queue')
end
local delivery = redis.call('HINCRBY', KEYS[3], id, 1)
local deadline = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[4], deadline, id)
return {tonumber(id), delivery, deadline, value}
