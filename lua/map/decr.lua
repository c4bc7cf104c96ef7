#!lua
--[[ map/decr
  Subtract an amount from an integer value; a missing value starts at 0 (DECRBY).
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  map  value (string holding a decimal integer)
  KEYS[2..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  amount  a signed 64-bit decimal integer
  ARGV[2]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  the new value
  Worst case  O(1)
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
local result = redis.call('DECRBY', KEYS[1], ARGV[1])
if lane and result then
  redis.call('HSET', KEYS[2], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
