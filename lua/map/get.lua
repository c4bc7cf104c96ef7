#!lua flags=no-writes
--[[ map/get
  Read the stored value.
  KEYS[1]  map  value (string)
  Returns  the stored bytes, or nil when the key does not exist
  Worst case  O(1)
]]
return redis.call('GET', KEYS[1])
