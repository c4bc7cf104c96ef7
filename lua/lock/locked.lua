#!lua flags=no-writes
--[[ lock/locked
  Tell whether anyone holds the lock: the key exists, whatever its value
  (the test Python redisext uses, so a lock held by either language counts).
  KEYS[1]  lock
  Returns  1 when the key exists, else 0
  Worst case  O(1)
]]
return redis.call('EXISTS', KEYS[1])
