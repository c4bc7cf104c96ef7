#!lua flags=allow-oom
--[[ semaphore/release
  Give a permit back and wake one waiter. Runs when the server is out of memory
  (allow-oom), so permits are not stuck until their deadlines then: it deletes
  the holder, and the one signal it adds is bounded (the list never holds more
  than the number of permits). The signal list is read before anything is
  written, so a key of another type fails the release with nothing changed.
  KEYS[1]  holders  zset (permit id -> deadline, ms)
  KEYS[2]  signal  list (never longer than the number of permits)
  ARGV[1]  id  permit id
  ARGV[2]  permits  the number of permits (>= 1), bounding the signal list
  Returns  1 when released, 0 when the permit was no longer held (expired and dropped, or released)
  Worst case  O(log P), P permits
]]
redis.call('LLEN', KEYS[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
