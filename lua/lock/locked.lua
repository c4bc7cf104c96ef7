#!lua flags=allow-oom
--[[ lock/locked
  Tell whether anyone holds the lock: the key exists, whatever its value
  (the test Python redisext uses, so a lock held by either language counts).
  It writes nothing, but has no no-writes flag on purpose: it runs on the
  master, as Python's check does, because a lagging replica could still show a
  lock that was released, or miss one that was just taken.
  KEYS[1]  lock
  Returns  1 when the key exists, else 0
  Worst case  O(1)
]]
return redis.call('EXISTS', KEYS[1])
