#!lua
--[[ good/master_read
  Only reads, but runs on the master on purpose (no no-writes flag): the lint
  leaves that choice to the script's author.
  KEYS[1]  lock
  Returns  1 when the key exists, else 0
  Worst case  O(1)
]]
return redis.call('EXISTS', KEYS[1])
