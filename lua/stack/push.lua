#!lua
--[[ stack/push
  Put an item on top of the stack (LPUSH).
  KEYS[1]  stack  list; its head is the top
  ARGV[1]  item  encoded item
  Returns  the stack's height after the push
  Worst case  O(1)
]]
return redis.call('LPUSH', KEYS[1], ARGV[1])
