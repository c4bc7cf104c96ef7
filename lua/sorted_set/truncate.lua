#!lua flags=allow-oom
--[[ sorted_set/truncate
  Keep the members with the highest scores and remove the rest
  (ZREMRANGEBYRANK 0 -(keep+1), as Python redisext does).
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  set  sorted set
  KEYS[2..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  keep  how many members to keep, a non-negative decimal integer
  ARGV[2]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  the number of members removed
  Worst case  O(log N + M), M the members removed (at most N - keep)
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[2], '^(%d+):(%d+):(%d+)$')
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
  local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
  if excess <= 0 then
    return 0
  end
  return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[2], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
