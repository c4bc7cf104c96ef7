#!lua flags=allow-oom
--[[ reliable_queue/nack
  Give a delivery back: the item returns to the front of the ready list (delivered
  next) and one waiter is woken, or after MAX deliveries it goes to the dead-letter
  list. Refused when the receipt is not the item's current delivery. The token of
  the delivery goes with it. Every key is read before anything is written, so a
  key of another type fails the nack with nothing changed. Runs when the server
  is out of memory (allow-oom): it gives an item back, moving its id from the
  in-flight set to the ready list (or its value to the dead-letter list) and
  adding one bounded signal.
  KEYS[1]  ready  list of ids (next to deliver at the tail)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  deliveries  hash (id -> times delivered)
  KEYS[4]  inflight  in-flight zset (id -> visibility deadline, ms)
  KEYS[5]  dead  dead-letter list (values; oldest at the tail)
  KEYS[6]  signal  list (never longer than the ready list)
  KEYS[7]  tokens  hash ("t:" token -> id, "h:" id -> token, for each delivery in flight)
  ARGV[1]  id  item id
  ARGV[2]  delivery  the delivery number from the receipt
  ARGV[3]  max_deliveries  after this many an item is dead-lettered (>= 1)
  Returns  1 requeued, 2 dead-lettered, 0 stale receipt (nothing changed)
  Worst case  O(log F), F the number of items in flight
]]
-- Read every key first: one of another type fails here, before any write.
redis.call('LLEN', KEYS[1])
local value = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('LLEN', KEYS[5])
redis.call('LLEN', KEYS[6])
redis.call('HLEN', KEYS[7])
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) or redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
-- Deletes the token of the item's delivery, with the delivery.
local token = redis.call('HGET', KEYS[7], 'h:' .. ARGV[1])
if token then
  redis.call('HDEL', KEYS[7], 't:' .. token, 'h:' .. ARGV[1])
end
if tonumber(ARGV[2]) >= tonumber(ARGV[3]) then
  if value then
    redis.call('LPUSH', KEYS[5], value)
  end
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 2
end
local ready = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, ready - 1)
return 1
