#!lua flags=allow-oom
--[[ lock/release
  Release the lock, but only for its holder: delete the key when it holds this
  token. A lock taken by someone else (or by Python redisext, whose value is "")
  is left alone.
  KEYS[1]  lock (string)
  ARGV[1]  the holder's token
  Returns  1 when the lock was released, 0 when it is not held with this token
  Worst case  O(1)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
