#!lua flags=allow-oom
--[[ semaphore/release
  Give a permit back, named by its token, and wake one waiter. Runs when the
  server is out of memory (allow-oom), so permits are not stuck until their
  deadlines then: it deletes the holder and its token, and the one signal it adds
  is bounded (the list never holds more than the number of permits). Every key is
  read before anything is written, so a key of another type fails the release
  with nothing changed.
  KEYS[1]  holders  zset (permit id -> deadline, ms)
  KEYS[2]  signal  list (never longer than the number of permits)
  KEYS[3]  tokens  hash ("t:" token -> permit id, "h:" permit id -> token, for each holder)
  ARGV[1]  token  the permit's token
  ARGV[2]  id  the permit id, or empty for whatever permit the token holds
  ARGV[3]  permits  the number of permits (>= 1), bounding the signal list
  Returns  1 when released, 0 when the permit was no longer held (expired and dropped, or released)
  Worst case  O(log P), P permits
]]
redis.call('ZCARD', KEYS[1])
redis.call('LLEN', KEYS[2])
local id = redis.call('HGET', KEYS[3], 't:' .. ARGV[1])
if not id or (ARGV[2] ~= '' and id ~= ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[3], 't:' .. ARGV[1], 'h:' .. id)
if redis.call('ZREM', KEYS[1], id) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
