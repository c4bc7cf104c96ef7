#!lua
--[[ queue/push
  Add an item at the queue's tail (LPUSH: the list's head holds the newest item).
  KEYS[1]  queue  list
  ARGV[1]  item  encoded item
  Returns  the queue's length after the push
  Worst case  O(1)
]]
return redis.call('LPUSH', KEYS[1], ARGV[1])
