#!lua
--[[ resource_pool/extend
  Move a lease's deadline to now + the given length (server time), if the lease is
  still this holder's. A lease past its deadline that no checkout has reclaimed yet
  is still the holder's (nobody else has had the member) and is extended too.
  KEYS[1]  idle  zset (not read: it names the model)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  leases  hash (member -> fencing number of its current lease)
  ARGV[1]  member  member
  ARGV[2]  fence  the lease's fencing number
  ARGV[3]  lease_ms  new length from now, ms (>= 1)
  Returns  the new deadline, ms, or nil when the lease is no longer this holder's
  Worst case  O(log N), N the number of members
]]
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return false
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
return deadline
