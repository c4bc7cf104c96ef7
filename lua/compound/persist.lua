#!lua
--[[ compound/persist
  Remove the expiry of every key of a model at once (PERSIST each).
  KEYS[1]  key  the model's key
  KEYS[2..]  siblings  its sibling keys
  Returns  the number of keys whose expiry was removed
  Worst case  O(K) for the K keys named
]]
local removed = 0
for _, key in ipairs(KEYS) do
  removed = removed + redis.call('PERSIST', key)
end
return removed
