#!lua flags=allow-oom
--[[ sorted_set/clean
  Delete the whole sorted set. Unlike a bare DEL (Python redisext), a key that
  holds another type is left alone and reported as WRONGTYPE.
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  set  sorted set
  KEYS[2..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  1 when the set was deleted, 0 when the key did not exist
  Worst case  O(N) in the set's size (freeing its members)
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
  local found = redis.call('TYPE', KEYS[1])['ok']
  if found == 'none' then
    return 0
  end
  if found ~= 'zset' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  return redis.call('DEL', KEYS[1])
end
local result = apply()
if lane and result then
  redis.call('HSET', KEYS[2], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return result
