#!lua flags=allow-oom
--[[ pool/pop
  Remove and return one member of the pool, chosen at random (SPOP).
  KEYS[1]  pool  set
  Returns  the removed member's bytes, or nil when the pool is empty
  Worst case  O(1)
]]
return redis.call('SPOP', KEYS[1])
