#!lua flags=no-writes
--[[ bad/read_only_writes
  Flagged no-writes, but writes.
  KEYS[1]  value
  KEYS[2]  hyperloglog
  Returns  nothing
  Worst case  O(1)
]]
redis.call('SET', KEYS[1], 'x')
-- PFCOUNT may update a cached count: Redis counts it as a write.
return redis.call('PFCOUNT', KEYS[2])
