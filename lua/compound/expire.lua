#!lua
--[[ compound/expire
  Set the time to live of every key of a model at once (PEXPIRE each), replacing any previous one.
  KEYS[1]  key  the model's key
  KEYS[2..]  siblings  its sibling keys
  ARGV[1]  ttl_ms  time to live, milliseconds (at least 1)
  Returns  the number of keys that exist and were given the expiry
  Worst case  O(K) for the K keys named
]]
local set = 0
for _, key in ipairs(KEYS) do
  set = set + redis.call('PEXPIRE', key, ARGV[1])
end
return set
