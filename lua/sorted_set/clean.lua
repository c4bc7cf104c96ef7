#!lua flags=allow-oom
--[[ sorted_set/clean
  Delete the whole sorted set. Unlike a bare DEL (Python redisext), a key that
  holds another type is left alone and reported as WRONGTYPE.
  KEYS[1]  set  sorted set
  Returns  1 when the set was deleted, 0 when the key did not exist
  Worst case  O(N) in the set's size (freeing its members)
]]
local found = redis.call('TYPE', KEYS[1])['ok']
if found == 'none' then
  return 0
end
if found ~= 'zset' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return redis.call('DEL', KEYS[1])
