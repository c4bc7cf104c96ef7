#!lua flags=allow-oom
--[[ semaphore/release
  Give a permit back and wake one waiter.
  KEYS[1]  holders zset (permit id -> deadline, ms)
  KEYS[2]  signal list (never longer than the number of permits)
  ARGV[1]  permit id
  ARGV[2]  permits (>= 1), bounding the signal list
  Returns  1 when released, 0 when the permit was no longer held (expired and dropped, or released)
  Worst case  O(log P), P permits
]]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
