#!lua flags=no-writes
--[[ map/exists
  Tell whether a value is stored.
  KEYS[1]  map  value (string)
  Returns  1 when the key exists, else 0
  Worst case  O(1)
]]
return redis.call('EXISTS', KEYS[1])
