#!lua flags=allow-oom
--[[ stack/pop
  Remove and return the top item (LPOP): last in, first out.
  KEYS[1]  stack  list; its head is the top
  Returns  the item's bytes, or nil when the stack is empty
  Worst case  O(1)
]]
return redis.call('LPOP', KEYS[1])
