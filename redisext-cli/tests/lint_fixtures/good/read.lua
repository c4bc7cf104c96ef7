#!lua flags=no-writes
--[[ good/read
  A read-only script: only reads, so it is flagged no-writes.
  KEYS[1]  hash
  Returns  the field's value, or nil
  Worst case  O(1)
]]
return redis.call('HGET', KEYS[1], 'field')
