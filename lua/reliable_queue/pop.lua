#!lua flags=allow-oom
--[[ reliable_queue/pop
  Deliver the next item: first return up to LIMIT in-flight items whose visibility
  deadline has passed to the front of the ready list (or, after MAX deliveries, to
  the dead-letter list), and move up to LIMIT delayed items that are due to the
  back of the ready list, earliest due first; then move the next ready item in
  flight with a deadline, under the consumer's TOKEN. Sent again with the same
  token while that delivery is in flight, it returns the same delivery instead
  of a second one. An element of the ready list that is no id of this queue
  (another writer's) is moved, whole, to the foreign list and skipped: up to
  LIMIT of them per call. Every key is read before anything is written, so a key
  of another type fails the pop with nothing changed. Runs when the server is
  out of memory (allow-oom), so consumers can drain the queue: it moves an
  item's id from the ready list into the in-flight set, counts the delivery and
  keeps its token, a few bytes per item that its ack frees with the item.
  KEYS[1]  ready  list of ids (next to deliver at the tail)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  deliveries  hash (id -> times delivered)
  KEYS[4]  inflight  in-flight zset (id -> visibility deadline, ms)
  KEYS[5]  dead  dead-letter list (values; oldest at the tail)
  KEYS[6]  foreign  list (elements met in the ready list that are no ids of this queue; oldest at the tail)
  KEYS[7]  delayed  zset (id -> due time, ms)
  KEYS[8]  tokens  hash ("t:" token -> id, "h:" id -> token, for each delivery in flight)
  ARGV[1]  visibility_ms  how long the item stays in flight, ms (>= 1)
  ARGV[2]  max_deliveries  after this many an item is dead-lettered (>= 1)
  ARGV[3]  limit  the most expired deliveries reclaimed, due items moved, and foreign elements set aside, by this call (>= 1)
  ARGV[4]  token  the consumer's token for this pop (32 hexadecimal digits)
  Returns  {id, delivery number, deadline ms, value}, or nil when nothing is ready
           (or when LIMIT foreign elements were set aside first: the next call goes on)
  Worst case  O(LIMIT * (log F + log D)), F items in flight, D delayed: LIMIT bounds the reclaiming, the moving and the skipping
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local max_deliveries = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
-- Read every key first: one of another type fails here, before any write.
redis.call('LLEN', KEYS[1])
redis.call('HLEN', KEYS[2])
redis.call('HLEN', KEYS[3])
redis.call('LLEN', KEYS[5])
redis.call('LLEN', KEYS[6])
redis.call('ZCARD', KEYS[7])
local mine = redis.call('HGET', KEYS[8], 't:' .. ARGV[4])

-- Deletes the token of an item's delivery, with the delivery.
local function forget(id)
  local token = redis.call('HGET', KEYS[8], 'h:' .. id)
  if token then
    redis.call('HDEL', KEYS[8], 't:' .. token, 'h:' .. id)
  end
end

local expired = redis.call('ZRANGE', KEYS[4], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[4], id)
  forget(id)
  if tonumber(redis.call('HGET', KEYS[3], id) or 0) >= max_deliveries then
    local value = redis.call('HGET', KEYS[2], id)
    if value then
      redis.call('LPUSH', KEYS[5], value)
    end
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  else
    redis.call('RPUSH', KEYS[1], id)
  end
end

local due = redis.call('ZRANGE', KEYS[7], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[7], id)
  redis.call('LPUSH', KEYS[1], id)
end

-- Sent again: the delivery this token took, while it is in flight.
if mine then
  local deadline = redis.call('ZSCORE', KEYS[4], mine)
  local value = redis.call('HGET', KEYS[2], mine)
  if deadline and value then
    return {tonumber(mine), tonumber(redis.call('HGET', KEYS[3], mine)), tonumber(deadline), value}
  end
end

for _ = 1, limit do
  local id = redis.call('RPOP', KEYS[1])
  if not id then
    return false
  end
  local value = redis.call('HGET', KEYS[2], id)
  if value then
    local delivery = redis.call('HINCRBY', KEYS[3], id, 1)
    local deadline = now + tonumber(ARGV[1])
    redis.call('ZADD', KEYS[4], deadline, id)
    redis.call('HSET', KEYS[8], 't:' .. ARGV[4], id, 'h:' .. id, ARGV[4])
    return {tonumber(id), delivery, deadline, value}
  end
  -- Not an id this queue pushed (another writer's element): set it aside, so
  -- that it neither blocks the queue nor gets lost.
  redis.call('HDEL', KEYS[3], id)
  redis.call('LPUSH', KEYS[6], id)
end
return false
