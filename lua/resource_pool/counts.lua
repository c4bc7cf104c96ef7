#!lua flags=no-writes
--[[ resource_pool/counts
  Count idle members, live leases and leases past their deadline not yet reclaimed.
  KEYS[1]  idle  zset (member -> server time it became idle, ms)
  KEYS[2]  leased  zset (member -> lease deadline, ms)
  KEYS[3]  retiring  set (leased members removed from the pool)
  Returns  {idle, leased and within deadline, leased past deadline, retiring}
  Worst case  O(log N), N the number of members
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', now)
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCARD', KEYS[2]) - expired,
  expired,
  redis.call('SCARD', KEYS[3]),
}
