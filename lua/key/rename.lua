#!lua
--[[ key/rename
  Rename the key when it exists. Python redisext does EXISTS then RENAME in two
  round trips; here both happen at once, so the check cannot go stale.
  KEYS[1]  key  current key
  KEYS[2]  new_key  new key (in Redis Cluster it must hash to the same slot)
  Returns  1 when renamed, 0 when KEYS[1] does not exist
  Worst case  O(1), plus freeing a value already at KEYS[2] (O(N) in its size)
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
