--[[ bad/no_shebang
  The first line is not a shebang.
  KEYS[1]  value
  Returns  the value
  Worst case  O(1)
]]
return redis.call('SET', KEYS[1], 1)
