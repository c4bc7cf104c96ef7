#!lua
--[[ reliable_queue/push
  Add values, each under a new id, and wake up to 64 waiters. Every key is read
  before anything is written, and the id counter (which may hold a non-integer)
  is the first write, so a key of the wrong type or content fails the push with
  nothing changed.
  KEYS[1]  ready  list of ids (newest at the head, next to deliver at the tail)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  ids  id counter (string; only grows)
  KEYS[4]  signal  list (never longer than the ready list was after the last push)
  ARGV[1..]  values  the values, oldest first (none is a no-op)
  Returns  the number of ready items after the push
  Worst case  O(V), V the number of values pushed
]]
redis.call('LLEN', KEYS[1])
redis.call('HLEN', KEYS[2])
redis.call('GET', KEYS[3])
redis.call('LLEN', KEYS[4])
for i = 1, #ARGV do
  local id = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[2], id, ARGV[i])
  redis.call('LPUSH', KEYS[1], id)
end
local ready = redis.call('LLEN', KEYS[1])
if #ARGV > 0 then
  for _ = 1, math.min(#ARGV, 64) do
    redis.call('LPUSH', KEYS[4], 1)
  end
  redis.call('LTRIM', KEYS[4], 0, ready - 1)
end
return ready
