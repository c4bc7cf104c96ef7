#!lua flags=no-writes
--[[ pool/members
  List every member of the pool (SMEMBERS), in no particular order.
  KEYS[1]  pool  set
  Returns  an array of member bytes (empty when the key does not exist)
  Worst case  O(N) in the pool's size: the whole pool is returned, as Python
    redisext returns it
]]
return redis.call('SMEMBERS', KEYS[1])
