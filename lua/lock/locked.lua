#!lua flags=no-writes
--[[ lock/locked
  Tell whether anyone holds the lock: the key exists, whatever its value
  (the test Python redisext uses, so a lock held by either language counts).
  Read-only, but the Lock model always sends it to the master, as Python's
  check does: a lagging replica could still show a released lock, or miss one
  that was just taken.
  KEYS[1]  lock  lock
  Returns  1 when the key exists, else 0
  Worst case  O(1)
]]
return redis.call('EXISTS', KEYS[1])
