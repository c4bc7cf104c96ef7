#!lua flags=allow-oom
--[[ reliable_queue/ack
  Finish a delivery: the item is deleted. Refused when the receipt is not the
  item's current delivery (its deadline passed and it was delivered again, or it
  was acknowledged already). Every key is read before anything is written, so a
  key of another type fails the ack with nothing changed.
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  deliveries  hash (id -> times delivered)
  KEYS[4]  inflight  in-flight zset (id -> visibility deadline, ms)
  ARGV[1]  id  item id
  ARGV[2]  delivery  the delivery number from the receipt
  Returns  1 when acknowledged, 0 when the receipt is stale (nothing changed)
  Worst case  O(log F), F the number of items in flight
]]
redis.call('HLEN', KEYS[2])
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) or redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
