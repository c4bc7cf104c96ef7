#!lua flags=allow-oom
--[[ reliable_queue/pop_dead
  Take the oldest dead letter (an item delivered the maximum number of times).
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  dead  dead-letter list (oldest at the tail)
  KEYS[3..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  the value, or nil when there is none
  Worst case  O(1)
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[1], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[3], lane)
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
local result = redis.call('RPOP', KEYS[2])
if lane and result then
  redis.call('HSET', KEYS[3], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return result
