#!lua flags=no-writes
--[[ key/ttl
  Read the key's remaining time to live (PTTL).
  KEYS[1]  key  any model's key
  Returns  milliseconds left, -1 when the key has no expiry, -2 when it does not exist
  Worst case  O(1)
]]
return redis.call('PTTL', KEYS[1])
