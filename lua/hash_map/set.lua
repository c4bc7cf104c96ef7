#!lua
--[[ hash_map/set
  Store one field of the hash (HSET), replacing its previous value.
  KEYS[1]  hash  hash
  ARGV[1]  field  name, as given
  ARGV[2]  value  encoded value
  Returns  1 when the field is new, 0 when an existing value was replaced
  Worst case  O(1)
]]
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
