#!lua
--[[ pool/push
  Add a member to the pool (SADD).
  KEYS[1]  pool  set
  ARGV[1]  member  encoded member
  Returns  1 when the member is new, 0 when it was already there
  Worst case  O(1)
]]
return redis.call('SADD', KEYS[1], ARGV[1])
