#!lua flags=allow-oom
--[[ queue/pop
  Remove and return the oldest item (RPOP): first in, first out.
  KEYS[1]  queue  list
  Returns  the item's bytes, or nil when the queue is empty
  Worst case  O(1)
]]
return redis.call('RPOP', KEYS[1])
