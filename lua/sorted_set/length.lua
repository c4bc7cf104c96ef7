#!lua flags=no-writes
--[[ sorted_set/length
  Count the members whose score lies in a range (ZCOUNT).
  KEYS[1]  set  sorted set
  ARGV[1]  min  lowest score: "-inf", a float, or "(" and a float for an open bound
  ARGV[2]  max  highest score, in the same form ("+inf" for no bound)
  Returns  the number of members in the range
  Worst case  O(log N)
]]
return redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[2])
