#!lua flags=allow-oom
--[[ bounded_queue/pop
  Take the oldest item.
  KEYS[1]  queue  list (oldest at the tail)
  Returns  the item, or nil when the queue is empty
  Worst case  O(1)
]]
return redis.call('RPOP', KEYS[1])
