#!lua flags=no-writes
--[[ hash_map/get
  Read one field of the hash (HGET).
  KEYS[1]  hash  hash
  ARGV[1]  field  name, as given (never serialized, as in Python redisext)
  Returns  the stored bytes, or nil when the field or the key does not exist
  Worst case  O(1)
]]
return redis.call('HGET', KEYS[1], ARGV[1])
