#!lua
--[[ bad/unknown_command
  Commands the lint cannot check.
  KEYS[1]  value
  ARGV[1]  command  a command name
  Returns  nothing
  Worst case  O(1)
]]
redis.call('FROBNICATE', KEYS[1])
local command = ARGV[1]
redis.call(command, KEYS[1])
redis.call('XGROUP', 'NOPE', KEYS[1])
return 1
