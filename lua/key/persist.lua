#!lua
--[[ key/persist
  Remove the key's expiry.
  KEYS[1]  key  any model's key
  Returns  1 when an expiry was removed, 0 when the key has none or does not exist
  Worst case  O(1)
]]
return redis.call('PERSIST', KEYS[1])
