#!lua flags=allow-oom
--[[ map/remove
  Delete the value.
  KEYS[1]  map  value (string)
  Returns  1 when a value was deleted, 0 when there was none
  Worst case  O(1)
]]
return redis.call('DEL', KEYS[1])
