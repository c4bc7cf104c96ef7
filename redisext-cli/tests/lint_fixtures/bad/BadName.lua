#!lua flags=no-writes
--[[ bad/BadName
  The file name is not snake_case.
  KEYS[1]  value
  Returns  the value
  Worst case  O(1)
]]
return redis.call('GET', KEYS[1])
