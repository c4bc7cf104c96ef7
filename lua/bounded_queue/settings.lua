#!lua flags=no-writes
--[[ bounded_queue/settings
  Read the capacity and overflow policy stored by the first push.
  KEYS[1]  queue  list (not read: it names the model)
  KEYS[2]  settings  hash (capacity, overflow)
  Returns  {capacity, overflow}, or nil before the first push
  Worst case  O(1)
]]
local stored = redis.call('HMGET', KEYS[2], 'capacity', 'overflow')
if not stored[1] then
  return false
end
return {tonumber(stored[1]), stored[2]}
