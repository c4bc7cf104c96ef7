#!lua
--[[ reliable_queue/push
  Add values, each under a new id, and wake up to 64 waiters. Every key is read
  before anything is written, and the id counter (which may hold a non-integer)
  is the first write, so a key of the wrong type or content fails the push with
  nothing changed.
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  ready  list of ids (newest at the head, next to deliver at the tail)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  ids  id counter (string; only grows)
  KEYS[4]  signal  list (never longer than the ready list was after the last push)
  KEYS[5..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  ARGV[2..]  values  the values, oldest first (none is a no-op)
  Returns  the number of ready items after the push
  Worst case  O(V), V the number of values pushed
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[1], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[5], lane)
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
  redis.call('LLEN', KEYS[1])
  redis.call('HLEN', KEYS[2])
  redis.call('GET', KEYS[3])
  redis.call('LLEN', KEYS[4])
  for i = 2, #ARGV do
    local id = redis.call('INCR', KEYS[3])
    redis.call('HSET', KEYS[2], id, ARGV[i])
    redis.call('LPUSH', KEYS[1], id)
  end
  local ready = redis.call('LLEN', KEYS[1])
  if #ARGV > 1 then
    for _ = 1, math.min(#ARGV - 1, 64) do
      redis.call('LPUSH', KEYS[4], 1)
    end
    redis.call('LTRIM', KEYS[4], 0, ready - 1)
  end
  return ready
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[5], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[5], ttl)
end
return result
