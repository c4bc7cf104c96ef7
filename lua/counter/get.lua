#!lua flags=no-writes
--[[ counter/get
  Read the counter.
  KEYS[1]  counter  string holding a decimal integer
  Returns  the stored bytes, or nil when the key does not exist
  Worst case  O(1)
]]
return redis.call('GET', KEYS[1])
