#!lua flags=no-writes
--[[ reliable_queue/counts
  Count ready items, deliveries in flight (within and past their deadline), dead
  letters, foreign elements set aside by pop, and delayed items (due or not:
  pop moves them to the ready list).
  KEYS[1]  ready  list of ids
  KEYS[2]  inflight  in-flight zset (id -> visibility deadline, ms)
  KEYS[3]  dead  dead-letter list
  KEYS[4]  foreign  list
  KEYS[5]  delayed  zset (id -> due time, ms)
  Returns  {ready, in flight within deadline, in flight past deadline, dead, foreign, delayed}
  Worst case  O(log F), F the number of items in flight
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', now)
return {
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]) - expired,
  expired,
  redis.call('LLEN', KEYS[3]),
  redis.call('LLEN', KEYS[4]),
  redis.call('ZCARD', KEYS[5]),
}
