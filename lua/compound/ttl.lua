#!lua flags=no-writes
--[[ compound/ttl
  Read a model's remaining time to live: the smallest PTTL among its keys that exist and expire, when the first part of it goes.
  KEYS[1]  key  the model's key
  KEYS[2..]  siblings  its sibling keys
  Returns  milliseconds until the first existing key expires, -1 when keys exist but none expires, -2 when none exists
  Worst case  O(K) for the K keys named
]]
local smallest = -2
for _, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left >= 0 then
    if smallest < 0 or left < smallest then
      smallest = left
    end
  elseif left == -1 and smallest == -2 then
    smallest = -1
  end
end
return smallest
