#!lua flags=allow-oom
--[[ hash_map/remove
  Delete one field of the hash (HDEL); the key goes when its last field does.
  KEYS[1]  hash  hash
  ARGV[1]  field  name, as given
  Returns  1 when the field was deleted, 0 when there was none
  Worst case  O(1)
]]
return redis.call('HDEL', KEYS[1], ARGV[1])
