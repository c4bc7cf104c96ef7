#!lua

--[[ bad/incomplete_header
  KEYS[1]  value
]]
return redis.call('INCR', KEYS[1])
