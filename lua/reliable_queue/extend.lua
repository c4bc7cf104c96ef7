#!lua
--[[ reliable_queue/extend
  Move a delivery's visibility deadline to now + the given length (server time),
  while the receipt is the item's current delivery.
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  deliveries  hash (id -> times delivered)
  KEYS[3]  inflight  in-flight zset (id -> visibility deadline, ms)
  ARGV[1]  id  item id
  ARGV[2]  delivery  the delivery number from the receipt
  ARGV[3]  visibility_ms  new deadline from now, ms (>= 1)
  Returns  the new deadline, ms, or nil when the receipt is stale
  Worst case  O(log F), F the number of items in flight
]]
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) or redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return false
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
return deadline
