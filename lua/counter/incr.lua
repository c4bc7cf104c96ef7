#!lua
--[[ counter/incr
  Add an amount to the counter; a missing counter starts at 0 (INCRBY).
  KEYS[1]  counter  string holding a decimal integer
  ARGV[1]  amount  a signed 64-bit decimal integer
  Returns  the new value
  Worst case  O(1)
]]
return redis.call('INCRBY', KEYS[1], ARGV[1])
