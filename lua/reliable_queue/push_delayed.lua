#!lua
--[[ reliable_queue/push_delayed
  Add a value under a new id, delivered once it is due: it waits in the delayed
  set, and the first pop after its due time (server time) moves it to the ready
  list. The due time is the server's now plus DELAY, or DUE_MS when it is not 0
  (a point in the server's clock). No waiter is woken: waiting pops check again
  every 100 ms. Every key is read before anything is written, and the id counter
  (which may hold a non-integer) is the first write, so a key of the wrong type
  or content fails the push with nothing changed.
  In exactly-once mode (OP not empty) a resent operation gets its first result
  back instead of applying again; that result is kept in OPS (a few bytes, or
  for a pop the value it took away).
  KEYS[1]  ready  list of ids (not read: it names the model)
  KEYS[2]  items  hash (id -> value)
  KEYS[3]  ids  id counter (string; only grows)
  KEYS[4]  delayed  zset (id -> due time, ms)
  KEYS[5..]  ops  exactly-once mode only: the client's operations (hash: lane -> last sequence number and first result)
  ARGV[1]  due_ms  the due time, ms since the Unix epoch on the server's clock, or 0 to use DELAY
  ARGV[2]  delay_ms  how long after the server's now the value is due, ms (used when DUE_MS is 0)
  ARGV[3]  value  the value
  ARGV[4]  op  exactly-once mode: "lane:sequence:ttl_ms" of this operation; else empty
  Returns  {due time ms, number of delayed items after the push}
  Worst case  O(log D), D the number of delayed items
]]
-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[4], '^(%d+):(%d+):(%d+)$')
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
redis.call('HLEN', KEYS[2])
redis.call('GET', KEYS[3])
redis.call('ZCARD', KEYS[4])
local due = tonumber(ARGV[1])
if due == 0 then
  local time = redis.call('TIME')
  due = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[2])
end
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], id, ARGV[3])
redis.call('ZADD', KEYS[4], due, id)
local result = {due, redis.call('ZCARD', KEYS[4])}
if lane and result then
  redis.call('HSET', KEYS[5], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[5], ttl)
end
return result
