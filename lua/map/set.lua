#!lua
--[[ map/set
  Store a value, replacing any previous one (and its expiry, as SET does).
  KEYS[1]  map  value (string)
  ARGV[1]  value  encoded value
  Returns  status OK
  Worst case  O(1)
]]
return redis.call('SET', KEYS[1], ARGV[1])
