#!lua flags=no-writes
--[[ queue/size
  Count the items in the queue (LLEN).
  KEYS[1]  queue  list
  Returns  the number of items (0 when the key does not exist)
  Worst case  O(1)
]]
return redis.call('LLEN', KEYS[1])
