#!lua flags=allow-oom
--[[ bad/oom_grows
  Flagged allow-oom, but adds data.
  KEYS[1]  list
  KEYS[2]  set of items taken
  Returns  the item taken
  Worst case  O(1)
]]
local item = redis.call('LPOP', KEYS[1])
if item then
  redis.call('SADD', KEYS[2], item)
end
return item
