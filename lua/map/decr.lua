#!lua
--[[ map/decr
  Subtract an amount from an integer value; a missing value starts at 0 (DECRBY).
  KEYS[1]  map  value (string holding a decimal integer)
  ARGV[1]  amount  a signed 64-bit decimal integer
  Returns  the new value
  Worst case  O(1)
]]
return redis.call('DECRBY', KEYS[1], ARGV[1])
