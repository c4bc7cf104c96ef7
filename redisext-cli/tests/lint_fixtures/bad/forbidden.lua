#!lua
--[[ bad/forbidden
  Calls commands and functions no redisext script may call.
  KEYS[1]  value
  ARGV[1]  code
  Returns  nothing
  Worst case  O(N) in the whole keyspace
]]
redis.call('KEYS', '*')
redis.call('FLUSHALL')
redis.call('config', 'GET', 'maxmemory')
redis.call('EVAL', 'return 1', 0)
redis.call('SCRIPT', 'FLUSH')
redis.call('BLPOP', KEYS[1], 0)
loadstring(ARGV[1])()
redis.set_repl(redis.REPL_NONE)
redis.call('DEL', KEYS[1])
return 1
