#!lua flags=no-writes
--[[ pool/contains
  Tell whether a member is in the pool (SISMEMBER), comparing encoded bytes.
  KEYS[1]  pool  set
  ARGV[1]  member  encoded member
  Returns  1 when it is a member, else 0
  Worst case  O(1)
]]
return redis.call('SISMEMBER', KEYS[1], ARGV[1])
