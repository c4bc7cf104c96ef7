#!lua flags=allow-oom
--[[ priority_queue/pop
  Remove and return the item with the lowest priority; among equal priorities,
  the lowest in byte order (ZPOPMIN: the item Python redisext's ZRANGEBYSCORE
  LIMIT 0 1 picks, but read and removed at once, so no two consumers get it).
  KEYS[1]  queue  priority queue (sorted set)
  Returns  the item's bytes, or nil when the queue is empty
  Worst case  O(log N)
]]
local popped = redis.call('ZPOPMIN', KEYS[1])
return popped[1] or false
