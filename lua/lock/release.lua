#!lua flags=allow-oom
--[[ lock/release
  Release the lock, but only for its holder: delete the key when it holds this
  token, and wake one waiter. A lock taken by someone else (or by Python
  redisext, whose value is "") is left alone. allow-oom: releasing must work on
  a full server; the signal list it adds to holds at most one element.
  KEYS[1]  lock  string
  KEYS[2]  signal  list (waiters block on it; at most one element)
  ARGV[1]  token  the holder's token
  Returns  1 when the lock was released, 0 when it is not held with this token
  Worst case  O(1)
]]
-- Read every key before writing, so a key of the wrong type fails with nothing changed.
local held = redis.call('GET', KEYS[1])
redis.call('LLEN', KEYS[2])
if held ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
return 1
