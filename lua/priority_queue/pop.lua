#!lua flags=allow-oom
--[[ priority_queue/pop
  Remove and return the item with the lowest priority; among equal priorities,
  the lowest in byte order (ZPOPMIN: the item Python redisext's ZRANGEBYSCORE
  LIMIT 0 1 picks, but read and removed at once, so no two consumers get it).
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  queue  priority queue (sorted set)
  KEYS[2..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  the item's bytes, or nil when the queue is empty
  Worst case  O(log N)
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[1], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[2], lane)
  local last_seq, first = 0, false
  if last then
    last_seq, first = cmsgpack.unpack(last)
  end
  if last_seq == tonumber(seq) then
    return first
  elseif last_seq > tonumber(seq) then
    return redis.error_reply('REDISEXT_SUPERSEDED lane ' .. lane .. ' has moved on to operation ' .. last_seq)
  end
end
local function apply()
  local popped = redis.call('ZPOPMIN', KEYS[1])
  return popped[1] or false
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[2], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
