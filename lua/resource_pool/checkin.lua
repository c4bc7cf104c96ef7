#!lua flags=allow-oom
--[[ resource_pool/checkin
  End a lease, named by its token: the member goes back to the idle set (or leaves
  the pool when it was removed while leased), the token is deleted, and one
  waiter is signalled. Refused when the token holds no lease (it was reclaimed
  after its deadline, or checked in already) or, with FENCE given, when its lease
  has another fencing number. Every key is read before anything is written, so a
  key of another type fails the checkin with nothing changed. Runs when the
  server is out of memory (allow-oom), so a full server does not freeze the pool:
  it moves the member from the leased set to the idle set, frees its lease and
  token, and adds one signal (the list is never longer than the idle set).
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  leases  hash (member -> fencing number of its current lease)
  KEYS[4]  retiring  set (leased members removed from the pool)
  KEYS[5]  signal  list (one element per member a waiter may take; never longer than the idle set)
  KEYS[6]  tokens  hash ("t:" token -> member, "h:" member -> token, for each lease)
  ARGV[1]  token  the lease's token
  ARGV[2]  fence  the lease's fencing number, or empty for whatever lease the token holds
  Returns  1 when the lease was this holder's and has ended, 0 when it was not (nothing changed)
  Worst case  O(log N), N the number of members
]]
-- Read every key first: one of another type fails here, before any write.
redis.call('ZCARD', KEYS[1])
redis.call('ZCARD', KEYS[2])
redis.call('SCARD', KEYS[4])
redis.call('LLEN', KEYS[5])
local member = redis.call('HGET', KEYS[6], 't:' .. ARGV[1])
if not member or (ARGV[2] ~= '' and redis.call('HGET', KEYS[3], member) ~= ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[6], 't:' .. ARGV[1], 'h:' .. member)
redis.call('ZREM', KEYS[2], member)
redis.call('HDEL', KEYS[3], member)
if redis.call('SREM', KEYS[4], member) == 1 then
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, member)
redis.call('LPUSH', KEYS[5], 1)
redis.call('LTRIM', KEYS[5], 0, redis.call('ZCARD', KEYS[1]) - 1)
return 1
