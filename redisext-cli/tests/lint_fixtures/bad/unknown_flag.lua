#!lua flags=no-writes,allow-cross-slot-keys name=x
--[[ bad/unknown_flag
  Cross-slot access is not allowed, and neither are other options.
  KEYS[1]  value
  Returns  the value
  Worst case  O(1)
]]
return redis.call('GET', KEYS[1])
