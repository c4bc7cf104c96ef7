#!lua
--[[ bad/header_keys
  The header and the body disagree about KEYS and ARGV.
  KEYS[1]  read
  KEYS[2]  unread  declared, never read
  ARGV[1]  read
  ARGV[3]  late  numbered out of order
  Returns  nothing
  Worst case  O(1)
]]
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[3])
return 1
