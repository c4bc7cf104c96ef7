#!lua flags=no-writes
--[[ bounded_queue/size
  Count the items.
  KEYS[1]  queue  list
  Returns  the number of items
  Worst case  O(1)
]]
return redis.call('LLEN', KEYS[1])
