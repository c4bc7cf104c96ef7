#!lua
--[[ bad/missing_no_writes
  Only reads, but is not flagged no-writes.
  KEYS[1]  value
  Returns  the value
  Worst case  O(1)
]]
return redis.call('GET', KEYS[1])
