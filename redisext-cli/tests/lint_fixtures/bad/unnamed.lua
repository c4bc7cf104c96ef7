#!lua
--[[ bad/unnamed
  A header line without a name word: the generated Rust call would have no field for it.
  KEYS[1]  counter
  ARGV[1]  the amount to add
  Returns  the new value
  Worst case  O(1)
]]
return redis.call('INCRBY', KEYS[1], ARGV[1])
