#!lua
--[[ bad/built_key
  Key names built or taken from somewhere else than KEYS.
  KEYS[1]  value
  ARGV[1]  name  a name
  ARGV[2]  other  another name
  Returns  nothing
  Worst case  O(1)
]]
redis.call('GET', 'prefix:' .. ARGV[1])
redis.call('SET', KEYS[1] .. ':suffix', 1)
local name = ARGV[1]
redis.call('DEL', name)
redis.call('RENAME', KEYS[1], ARGV[2])
redis.call('DEL', unpack(ARGV))
redis.call('MSET', KEYS[1], 'a', 'b', 'c')
return 1
