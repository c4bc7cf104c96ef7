#!lua
--[[ semaphore/extend
  Move a held permit's deadline to now + the given length (server time). A permit
  past its deadline that no acquire has dropped yet is still held and is extended.
  KEYS[1]  holders  zset (permit id -> deadline, ms)
  ARGV[1]  id  permit id
  ARGV[2]  hold_ms  new length from now, ms (>= 1)
  Returns  the new deadline, ms, or nil when the permit is no longer held
  Worst case  O(log P), P permits
]]
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return false
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
return deadline
