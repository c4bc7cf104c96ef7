#!lua flags=allow-oom
--[[ sorted_set/clean_by_score
  Remove the members whose score lies in a range (ZREMRANGEBYSCORE).
  KEYS[1]  set  sorted set
  ARGV[1]  min  lowest score: "-inf", a float, or "(" and a float for an open bound
  ARGV[2]  max  highest score, in the same form ("+inf" for no bound)
  Returns  the number of members removed
  Worst case  O(log N + M), M the members removed
]]
return redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
