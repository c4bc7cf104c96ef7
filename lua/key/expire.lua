#!lua
--[[ key/expire
  Set the key's time to live (PEXPIRE), replacing any previous one.
  KEYS[1]  key  any model's key
  ARGV[1]  ttl_ms  time to live, milliseconds (at least 1)
  Returns  1 when the expiry was set, 0 when the key does not exist
  Worst case  O(1)
]]
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
