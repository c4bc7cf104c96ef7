#!lua flags=allow-oom
--[[ reliable_queue/ack
  Finish a delivery: the item is deleted. Refused when the receipt is not the
  item's current delivery (its deadline passed and it was delivered again, or it
  was acknowledged already). The token of the delivery goes with it. Every key
  is read before anything is written, so a key of another type fails the ack
  with nothing changed.
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  deliveries  hash (id -> times delivered)
  KEYS[4]  inflight  in-flight zset (id -> visibility deadline, ms)
  KEYS[5]  tokens  hash ("t:" token -> id, "h:" id -> token, for each delivery in flight)
  ARGV[1]  id  item id
  ARGV[2]  delivery  the delivery number from the receipt
  Returns  1 when acknowledged, 0 when the receipt is stale (nothing changed)
  Worst case  O(log F), F the number of items in flight
]]
redis.call('HLEN', KEYS[2])
redis.call('HLEN', KEYS[5])
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) or redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
-- Deletes the token of the item's delivery, with the delivery.
local token = redis.call('HGET', KEYS[5], 'h:' .. ARGV[1])
if token then
  redis.call('HDEL', KEYS[5], 't:' .. token, 'h:' .. ARGV[1])
end
return 1
