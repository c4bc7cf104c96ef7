#!lua
--[[ bad/syntax
  Not Lua.
  KEYS[1]  value
  Returns  nothing
  Worst case  O(1)
]]
local x = redis.call('GET', KEYS[1])
if x then
  return = 1
end
