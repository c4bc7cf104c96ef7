#!lua flags=allow-oom
--[[ good/drain
  Take up to a limit of items away: allowed to run when the server is out of memory.
  KEYS[1]  list
  ARGV[1]  count  how many items, at least 1
  Returns  the items taken
  Worst case  O(ARGV[1])
]]
local items = redis.call('LPOP', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
return items
