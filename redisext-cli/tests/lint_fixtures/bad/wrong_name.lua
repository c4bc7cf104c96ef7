#!lua
--[[ bad/another_name
  The header names another script.
  KEYS[1]  value
  Returns  the new value
  Worst case  O(1)
]]
return redis.call('INCR', KEYS[1])
