#!lua
--[[ map/incr
  Add an amount to an integer value; a missing value starts at 0 (INCRBY).
  KEYS[1]  map  value (string holding a decimal integer)
  ARGV[1]  amount  a signed 64-bit decimal integer
  Returns  the new value
  Worst case  O(1)
]]
return redis.call('INCRBY', KEYS[1], ARGV[1])
